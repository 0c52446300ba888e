"""The package layout (issue #14): stage-named packages, each importing only from the layers
below it, and no module so long that a reader loses the thread."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "rag"
# Bottom to top; a module may import from its own layer's other packages only where listed.
LAYERS: list[set[str]] = [
    {"errors", "settings", "results", "options", "text"},  # the core: types and helpers every stage shares
    {"documents", "models"},
    {"index"},
    {"ingest", "answer"},
    {"stories"},  # briefings, timelines, related coverage: over the index and the answers' checks
    {"conversations"},  # saved chats: answers (rag.results) kept per user beside the index
    {"api"},
    {"serve", "evaluation", "cli", "testing", "__main__", "__init__", "feeds"},  # feeds: functions over a RAG
]
MAX_LINES = 450  # "about 400"


def _unit(module: str) -> str:
    """The layout unit of a dotted module name: its package under rag, or the core module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        module = "rag." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rag":
                found.add(node.module if node.module != "rag" else f"rag.{node.names[0].name}")
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "rag")
        out[module] = found
    return out


def test_each_package_imports_only_from_the_layers_below_it():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    upward = []
    for module, imported in _imports().items():
        unit = _unit(module)
        assert unit in layer, f"{module}: {unit!r} is in no layer of tests/test_layout.py"
        for target in imported:
            other = _unit(target)
            if other != unit and layer[other] > layer[unit]:
                upward.append(f"{module} imports {target}")
            # Within a layer, only the listed direction: the core's modules import each other freely.
            if other != unit and layer[other] == layer[unit] and layer[unit] not in (0, len(LAYERS) - 1):
                upward.append(f"{module} imports {target} (same layer)")
    assert upward == []


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_says_what_it_holds():
    for init in ROOT.rglob("__init__.py"):
        if init.parent.name.startswith("_"):
            continue  # rag/_prompts, rag/_seeds exist only in a built wheel
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} has no docstring"


def test_every_package_is_in_the_wheel():
    """pyproject lists packages by hand (prompts/ and seeds/ are mapped into the wheel), so a new
    package that is not listed would install without it: a wheel without `rag.cli` has no `rag`."""
    import tomllib

    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(("rag", *p.parent.relative_to(ROOT).parts)) for p in ROOT.rglob("__init__.py")}
    assert found - listed == set()
