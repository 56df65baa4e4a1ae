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


def check_choice(option: str, value: object, choices: tuple[object, ...]) -> None:
    """``--option`` must be one of ``choices``."""
    if value not in choices:
        shown = " | ".join(str(c) for c in choices)
        raise ContractError(f"--{option} must be one of {shown}, got {value!r}")


def check_min(option: str, value: float, minimum: float) -> None:
    """``--option`` must be ``>= minimum``."""
    if value < minimum:
        raise ContractError(f"--{option} must be >= {minimum}, got {value!r}")


def check_device(device: str) -> None:
    """``--device`` must name a device this machine has (``cpu``, ``cuda[:i]``)."""
    if device == "cpu":  # the default: no need to import torch
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ContractError(f"--device: unknown device {device!r} (cpu | cuda)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ContractError(f"--device {device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ContractError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise ContractError(f"--device {device}: only cpu and cuda are supported")


def short_reason(exc: object, limit: int = 160) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
