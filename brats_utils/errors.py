"""Exceptions that mean "the user gave bad input", shown without a traceback by the CLI."""

from __future__ import annotations

__all__ = ["BratsError", "CaseError"]


class BratsError(Exception):
    """A user-facing error: the message says what was expected, what was found and where.

    The command line prints ``error: <message>`` and exits with status 2 instead of showing
    a traceback.
    """


class CaseError(BratsError, ValueError):
    """A problem with one case or one of its files.

    Attributes:
        case_id: the case concerned (e.g. ``"BraTS2021_00042"``).
        path: the file concerned, if any.
        message: the bare problem, without case and file (for one-line reports).
    """

    def __init__(self, case_id: str, message: str, path: object | None = None):
        self.case_id = case_id
        self.path = path
        self.message = message
        where = f"{case_id}: " if case_id else ""
        file_part = f" ({path})" if path is not None else ""
        super().__init__(f"{where}{message}{file_part}")
