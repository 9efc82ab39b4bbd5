"""Numbers from predictions: the seed's slice metrics and BraTS region Dice/HD95 per case (no
Keras).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
