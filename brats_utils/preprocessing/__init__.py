"""How a case becomes model input (PreprocessSettings, normalisation, resizing) and the slice cache
(no Keras).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
