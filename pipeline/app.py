"""The Typer application and shared option types of the ``audiograph`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Graph learning on heterogeneous audio catalogs. Errors print one line (exit 2);"
    " add --debug or set AUDIOGRAPH_DEBUG=1 to see the traceback of an internal error.",
)
prepare_app = typer.Typer(
    no_args_is_help=True, help="Convert a source catalog into a contract dataset directory."
)
app.add_typer(prepare_app, name="prepare")

Out = Annotated[Path, typer.Option("--out", help="Output directory (written atomically).")]
Src = Annotated[Path, typer.Option("--src", help="Folder with the source files.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress output.")]
Distributed = Annotated[
    bool,
    typer.Option(
        "--distributed",
        help="One rank of a torchrun launch (torchrun --nproc-per-node N -m audiograph ...).",
    ),
]
