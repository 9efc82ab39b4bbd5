"""Case files: discovering, reading and checking BraTS cases of every release, the split, synthetic
cases and prediction files (no Keras; docs/ARCHITECTURE.md says what it may import)."""
