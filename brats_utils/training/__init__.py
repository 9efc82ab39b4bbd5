"""Learning: TrainSettings and the run folder (no Keras), the slice loader, losses, Keras metrics,
fit and ``brats train``.

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
