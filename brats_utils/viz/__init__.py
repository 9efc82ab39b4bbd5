"""Figures (``plot_x(..., ax=None, out_path=None) -> Figure``) and the slice viewer."""
