"""The import layers of docs/ARCHITECTURE.md, read from the source: every import, at module level or
inside a function, goes to a lower layer (or stays inside its own package), and no modules import each
other in a circle."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gankit"

# Bottom to top. A module may import from a lower layer, and from its own package (gankit.data.x from
# gankit.data.y); the commands at the top may also import each other.
LAYERS: list[tuple[str, set[str]]] = [
    ("core", {"gankit.errors", "gankit.registry", "gankit.options", "gankit.runtime", "gankit.version"}),
    ("schema", {"gankit.config"}),
    ("parts", {"gankit.data", "gankit.nets", "gankit.objectives", "gankit.augment", "gankit.images"}),
    ("metrics", {"gankit.metrics"}),
    ("recipes", {"gankit.recipes"}),
    ("assembly", {"gankit.assemble"}),
    ("training", {"gankit.training"}),
    ("commands", {"gankit.run", "gankit.sampling", "gankit.translation", "gankit.evaluation", "gankit.lab",
                  "gankit.quality_diversity", "gankit.text_transfer", "gankit.api", "gankit", "gankit.cli", "gankit.__main__", "gankit.presets"}),
]
PEERS_ALLOWED = {"core", "commands"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The gankit modules ``path`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "gankit":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            out |= set(subs) if subs and len(subs) == len(node.names) else {target, *subs}
    return {m for m in out if m in known and m != name}


def layer_of(name: str) -> int:
    best, depth = None, -1
    for i, (_, units) in enumerate(LAYERS):
        for unit in units:
            if (name == unit or name.startswith(unit + ".")) and unit.count(".") > depth:
                best, depth = i, unit.count(".")
    assert best is not None, f"module {name} is in no layer of tests/test_layers.py (and docs/ARCHITECTURE.md)"
    return best


def unit_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


def violations(root: Path) -> list[str]:
    known = modules(root)
    found = []
    for name, path in known.items():
        mine = layer_of(name)
        for target in sorted(imports(path, name, known)):
            theirs = layer_of(target)
            same_unit = unit_of(name) == unit_of(target) and name != "gankit"
            if theirs > mine or (theirs == mine and not same_unit and LAYERS[mine][0] not in PEERS_ALLOWED):
                found.append(f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    return found


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    known = modules(root)
    graph = {name: sorted(imports(path, name, known)) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_a_higher_layer():
    assert violations(SRC) == []


def test_no_import_circle():
    assert cycles(SRC) == []


def test_the_layer_check_catches_a_planted_violation(tmp_path):
    copy = tmp_path / "gankit"
    shutil.copytree(SRC, copy)
    assert violations(copy) == []
    planted = copy / "objectives.py"
    planted.write_text(planted.read_text() + "\n\ndef _later():\n    from .training.loop import Trainer  # noqa\n")
    assert violations(copy) == ["gankit.objectives (parts) imports gankit.training.loop (training)"]
    (copy / "metrics" / "late.py").write_text("from ..recipes import draw_samples  # noqa\n")
    assert "gankit.metrics.late (metrics) imports gankit.recipes (recipes)" in violations(copy)


def test_the_circle_check_catches_a_planted_circle(tmp_path):
    copy = tmp_path / "gankit"
    shutil.copytree(SRC, copy)
    (copy / "nets" / "layers.py").write_text((copy / "nets" / "layers.py").read_text() + "\nfrom . import mlp  # noqa\n")
    assert ["gankit.nets.layers", "gankit.nets.mlp"] in cycles(copy)


@pytest.mark.parametrize("name", ["gankit.data.batches", "gankit.recipes.gan", "gankit.training.loop"])
def test_every_module_has_a_layer(name):
    assert name in modules(SRC)
    layer_of(name)
