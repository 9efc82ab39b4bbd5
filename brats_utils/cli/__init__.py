"""The ``brats`` command line: ``main`` and one module per command (``add_parser``, ``run``)."""
