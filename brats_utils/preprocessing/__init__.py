"""How a case becomes model input (PreprocessSettings, normalisation, resizing) and the slice cache
(no Keras; docs/ARCHITECTURE.md says what it may import)."""
