"""What the numbered notebooks share, and their headless runs with papermill (``brats notebooks``).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
