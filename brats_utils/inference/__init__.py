"""Whole-volume predictions of a trained run, back in each case's source space."""
