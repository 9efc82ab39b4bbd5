"""Sub-commands of the ``brats`` command line; each module is light (no TensorFlow at import)."""
