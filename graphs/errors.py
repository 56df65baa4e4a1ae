"""User-facing errors: one line that names the file, the column and an example row."""

from __future__ import annotations

from typing import Any


class ContractError(ValueError):
    """Bad user input. The CLI prints ``error: <message>`` and exits with code 2."""


def contract_error(
    file: str,
    column: str | None,
    problem: str,
    row: dict[str, Any] | None = None,
    row_number: int | None = None,
) -> ContractError:
    """Build a one-line :class:`ContractError`.

    Args:
        file: file name (or path) the problem is in.
        column: offending column, or ``None`` for table-level problems.
        problem: what is wrong, e.g. ``"negative weight"``.
        row: an example offending row (printed as ``key=value`` pairs).
        row_number: 0-based row position of the example in the file, if known.
    """
    where = f"{file}" + (f", column '{column}'" if column else "")
    msg = f"{where}: {problem}"
    if row is not None:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in row.items())
        at = f"row {row_number}" if row_number is not None else "example row"
        msg += f" ({at}: {shown})"
    return ContractError(msg.replace("\n", " "))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
