"""Learning: settings, run folder, slice loader, losses, metrics, fit, ``brats train``."""
