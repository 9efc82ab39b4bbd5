"""Case files: discovery, reading, checks, the split, synthetic cases, predictions."""
