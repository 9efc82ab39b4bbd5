"""Exceptions that mean "the user gave bad input", shown without a traceback by the CLI."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from typing import Any

__all__ = ["BratsError", "CaseError", "check_choice", "from_known_keys"]


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


def from_known_keys(cls: type, d: dict[str, Any], what: str) -> Any:
    """``cls(**d)`` of a settings dataclass; ``ValueError`` naming the keys it does not know."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; expected {sorted(known)}")
    return cls(**d)


def check_choice(name: str, value: Any, choices: Collection) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
