"""What the CLI tests share: run ``audiograph`` in-process and check a one-line error."""

from __future__ import annotations

import pytest

from audiograph.pipeline.cli import main


def cli(capsys, *args: object) -> tuple[int, str, str]:  # noqa: ANN001
    """``audiograph ARGS`` in-process: ``(exit code, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def one_line_error(code: int, err: str, *words: str) -> None:
    """Exit 2, one ``error:`` line holding every one of ``words``, no traceback."""
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
