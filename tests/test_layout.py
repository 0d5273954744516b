"""The package's layers, as the README's Layout section draws them: imports run one way, down.

cases -> data -> train -> results -> suite -> scale -> report -> cli, each reading only what
sits below it (or its own folder). Read from the source's import statements, so a new import
back up the layers fails here before anyone has to spot it in review.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mnistbench"
LAYERS = ("cases", "data", "train", "results", "suite", "scale", "report", "cli")
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def layer_of(dotted: str) -> str | None:
    """'mnistbench.results.gate' -> 'results'; the package's face and __main__ belong to no layer."""
    parts = dotted.split(".")
    if parts[0] != "mnistbench" or len(parts) < 2:
        return None
    return {"__main__": "cli", "__init__": None}.get(parts[1], parts[1])


def imported(path: Path) -> set[str]:
    """Every mnistbench module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.startswith("mnistbench.")}


def dotted(path: Path) -> str:
    return ".".join(("mnistbench", *path.relative_to(PACKAGE).with_suffix("").parts))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers_only(path):
    own = layer_of(dotted(path))
    if own is None:
        return
    for name in imported(path):
        other = layer_of(name)
        if other is not None and other in LAYERS:
            assert LAYERS.index(other) <= LAYERS.index(own), f"{dotted(path)} imports {name}: back up the layers"


def test_every_folder_of_the_package_is_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    files = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert folders | files == set(LAYERS)


def test_nothing_but_the_command_line_reaches_the_report():
    for path in modules():
        if layer_of(dotted(path)) not in ("report", "cli"):
            assert not any(layer_of(n) == "report" for n in imported(path)), dotted(path)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
