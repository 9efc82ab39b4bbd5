"""Numbers from predictions: the seed's slice metrics and BraTS region Dice/HD95 per case (no
Keras; docs/ARCHITECTURE.md says what it may import)."""
