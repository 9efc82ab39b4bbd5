"""The ``brats`` command line: ``main`` and one light module per command (``add_parser``, ``run``).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
