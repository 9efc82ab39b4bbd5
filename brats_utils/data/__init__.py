"""Case files: discovering, reading and checking BraTS cases of every release, the split, synthetic
cases and prediction files (no Keras).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
