"""How a case becomes model input, and the slice cache."""
