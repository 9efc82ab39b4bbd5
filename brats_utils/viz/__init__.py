"""Figures (``plot_x(..., ax=None, out_path=None) -> Figure``) and the ipywidgets slice viewer.

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
