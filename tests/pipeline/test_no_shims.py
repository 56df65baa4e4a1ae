"""The old import paths of renamed modules are gone (0.1 has no users to keep them for):
each name below is importable only as the module it was renamed to."""

from __future__ import annotations

import importlib.util

import pytest

RENAMED = {
    "audiograph.semantic_ids.generative": "audiograph.semantic_ids.generative_train",
    "audiograph.semantic_ids.tokenize": "audiograph.semantic_ids.assign",
    "audiograph.twotower.export": "audiograph.twotower.serve",
    "audiograph.twotower.features": "audiograph.twotower.vectors",
    "audiograph.core.featurize": "audiograph.core.text_encoder",
}


@pytest.mark.parametrize(("old", "new"), RENAMED.items(), ids=list(RENAMED))
def test_only_the_new_module_is_importable(old, new):
    assert importlib.util.find_spec(new) is not None
    assert importlib.util.find_spec(old) is None, f"{old} is importable again"
