"""Whole-volume predictions of a trained run, back in each case's source space.

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
