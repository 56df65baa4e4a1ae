"""Keep PyG's generated ``propagate`` modules out of the temp folder.

PyG writes one module per ``MessagePassing`` class and process, from a template, into a
file in the temp folder that it never removes; a busy machine collects hundreds. Build
every PyG convolution (the HGNN's, LightGCN's) inside :func:`pyg_templates_discarded`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def pyg_templates_discarded() -> Iterator[None]:
    """Build PyG convolutions in here: the generated module goes to a private folder,
    removed on leaving (the module is loaded by then; its source is only for TorchScript,
    which audiograph does not use). Meanwhile it is Python's default temp folder, in every
    thread."""
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="audiograph-pyg-") as private:
        tempfile.tempdir = private
        try:
            yield
        finally:
            tempfile.tempdir = saved
