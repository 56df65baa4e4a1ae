"""The package layout: inference never imports a trainer, the CLI never imports the
benchmark scripts, no import-path manipulation, one definition of EdgeType."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAINERS = (
    "audiograph.hgnn.train",
    "audiograph.twotower.train",
    "audiograph.semantic_ids.generative_train",
    "audiograph.semantic_ids.finetune",
    "audiograph.semantic_ids.prefix_train",
)


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_inference_and_evaluation_import_no_trainer():
    mods = _loaded_after(
        "import audiograph.semantic_ids.generate, audiograph.semantic_ids.prefix, "
        "audiograph.twotower.serve, audiograph.hgnn.user_means, "
        "audiograph.twotower.evaluate, audiograph.hgnn.export, audiograph.hgnn.neighbors"
    )
    assert not mods & set(TRAINERS), sorted(mods & set(TRAINERS))


def test_the_cli_never_imports_the_benchmark_scripts():
    mods = _loaded_after("import audiograph.pipeline.cli")
    assert not [m for m in mods if m.startswith(("benchmarks", "tables", "quality"))]
    assert not mods & {"torch", "torch_geometric"}  # every command starts in a blink


def test_no_import_path_hacks_and_one_edge_type():
    sources = [
        p
        for d in (
            "audiograph",
            "core",
            "graphs",
            "samplers",
            "hgnn",
            "twotower",
            "semantic_ids",
            "pipeline",
            "benchmarks",
            "tests",
        )
        for p in (ROOT / d).rglob("*.py")
    ]
    assert len(sources) > 50
    needle = "sys." + "path"
    assert not [p for p in sources if needle in p.read_text()]
    defs = [p for p in sources if "\nEdgeType = " in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in defs] == ["core/types.py"]


def test_the_source_tree_imports_as_it_stands(tmp_path):
    """From the repository root the partial ``audiograph/`` folder shadows any installed
    copy (a regular ``pip install .``): its subpackages must still be found, in the
    stage folders beside it. ``-S``: no site-packages, so no installed or editable copy
    can help."""
    import os

    code = (
        "import audiograph.core.errors as e, audiograph.graphs.adapters.synthetic_vocab as v;"
        "print(e.__file__); print(v.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [
        str(ROOT / "core" / "errors.py"),
        str(ROOT / "graphs" / "adapters" / "synthetic_vocab.py"),
    ]


def test_stage_5_reads_embeddings_through_core_not_the_two_tower():
    mods = _loaded_after(
        "import audiograph.semantic_ids.spaces, audiograph.semantic_ids.generate, "
        "audiograph.semantic_ids.prefix, audiograph.semantic_ids.assign"
    )
    assert not [m for m in mods if m.startswith("audiograph.twotower")]


def test_help_groups_every_command_by_stage():
    from audiograph.pipeline.app import PANELS, app
    from audiograph.pipeline.cli import main  # noqa: F401  (registers every command)

    named = [c for cmds in PANELS.values() for c in cmds]
    have = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(named) == sorted(have) and len(set(named)) == len(named)
    assert [c.name for c in app.registered_commands] == [c for c in named if c != "prepare"]


def test_commands_config_tables_and_runner_stages_share_one_naming_rule():
    from audiograph.pipeline.app import app
    from audiograph.pipeline.cli import main  # noqa: F401  (registers every command)
    from audiograph.pipeline.options import SECTIONS
    from audiograph.pipeline.stages import STAGES, section_of

    assert [section_of(c) for c in ("build-graph", "train-hgnn", "semantic-ids", "split")] == [
        "graph",
        "hgnn",
        "semantic_ids",
        "split",
    ]
    commands = {c.name for c in app.registered_commands}
    assert {s.command for s in STAGES} - {"prepare"} <= commands  # prepare is a group
    assert [s.name for s in STAGES] == [section_of(s.command) for s in STAGES]
    configured = {section_of(c) for c in commands} & SECTIONS
    assert configured == SECTIONS  # every --config table is its command's object
    assert {s.name for s in STAGES if s.config is not None} <= SECTIONS | {"users"}
