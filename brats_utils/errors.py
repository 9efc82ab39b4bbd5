"""Exceptions that mean "the user gave bad input", shown without a traceback by the CLI."""

from __future__ import annotations

__all__ = ["BratsError", "CaseError"]


class BratsError(Exception):
    """A user mistake: the CLI prints ``error: <message>`` and exits 2, no traceback."""


class CaseError(BratsError, ValueError):
    """A problem with one case or one of its files; ``message`` is the bare problem."""

    def __init__(self, case_id: str, message: str, path: object | None = None):
        self.case_id = case_id
        self.path = path
        self.message = message
        where = f"{case_id}: " if case_id else ""
        file_part = f" ({path})" if path is not None else ""
        super().__init__(f"{where}{message}{file_part}")
