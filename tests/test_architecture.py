"""The package's layers: each module imports only from its own layer or the layers below.

The order is stated once, here (`LAYERS`), and shown in the README's "Layout" section. Every
module's package imports are read with `ast`, those inside functions included: a module may not
import from a layer above its own, no two modules may import each other even indirectly (a
cycle), and only `sortition/cli.py` may import inside a function (to start quickly). The same
checker is run on small made-up packages to show that it fails when it should.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sortition"

# Bottom to top. `sortition/__init__.py`, `__main__.py` and `cli.py` sit above every layer.
LAYERS = ("core", "inputs", "recruitment", "lottery", "draw", "bundle", "operations")
TOP = ("sortition", "sortition.__main__", "sortition.cli")
LAZY_ALLOWED = ("sortition.cli",)  # imports inside functions, for start-up speed
ORDER = " → ".join((*LAYERS, "cli"))


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (a package's `__init__` is the package's name)
    line: int
    nested: bool  # inside a function or class, not at module level


def module_name(path: Path, root: Path) -> str:
    """`root/core/errors.py` → `sortition.core.errors`; `root/bundle/verifier/__init__.py` →
    `sortition.bundle.verifier` (root is the `sortition` folder)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


class _Imports(ast.NodeVisitor):
    def __init__(self, package: str, known: set[str], top: str) -> None:
        self.package, self.known, self.top = package, known, top
        self.depth = 0
        self.found: list[Import] = []

    def _nested(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested

    def _add(self, target: str, node: ast.stmt) -> None:
        if target == self.top or target.startswith(self.top + "."):
            self.found.append(Import(target, node.lineno, self.depth > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + [node.module or ""]).strip(".")
        else:
            base = node.module or ""
        for alias in node.names:  # `from . import drawspec`: the name is a module
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.known else base, node)


def scan(root: Path) -> dict[str, tuple[Path, list[Import]]]:
    """Every module under `root` (a package folder) with its imports from that package."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    out = {}
    for module, path in paths.items():
        visitor = _Imports(_package_of(module, path), set(paths), root.name)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        out[module] = (path, visitor.found)
    return out


def layer(module: str) -> int | None:
    """The module's rank in the order (0 = core; `len(LAYERS)` = the command line), None if it
    is in no layer."""
    if module in TOP:
        return len(LAYERS)
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if len(parts) == 2 and parts[1] in LAYERS:  # a layer's own __init__
        return LAYERS.index(parts[1])
    return None


def _name(rank: int) -> str:
    return LAYERS[rank] if rank < len(LAYERS) else "cli"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems(modules: dict[str, tuple[Path, list[Import]]]) -> list[str]:
    """Everything that breaks the layering, one line each (empty: all is well)."""
    out = []
    graph: dict[str, set[str]] = {}
    for module, (path, imports) in sorted(modules.items()):
        rank = layer(module)
        if rank is None:
            out.append(f"{path}: in no layer (put it in one of {', '.join(LAYERS)})")
            continue
        for imp in imports:
            graph.setdefault(module, set()).add(imp.target)
            if imp.nested and module not in LAZY_ALLOWED:
                out.append(f"{path}:{imp.line}: imports {imp.target} inside a function (only "
                           "cli.py may; import at the top of the module)")
            target = layer(imp.target)
            if target is not None and target > rank:
                out.append(f"{path}:{imp.line}: imports {imp.target} (layer {_name(target)}) "
                           f"from layer {_name(rank)}; the order is {ORDER}")
    for cycle in _cycles(graph):
        out.append(f"import cycle: {' ↔ '.join(cycle)}")
    return out


# The package -----------------------------------------------------------------------------------


def test_the_package_keeps_its_layers():
    found = scan(PACKAGE)
    assert "sortition.core.errors" in found and "sortition.cli" in found  # the scan works
    assert problems(found) == []


def test_every_layer_is_a_package_of_the_tree():
    for name in LAYERS:
        assert (PACKAGE / name / "__init__.py").is_file(), name
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py",
                                                            "cli.py"]


def test_the_readme_states_the_same_order():
    assert ORDER in (ROOT / "README.md").read_text(encoding="utf-8")


def _readme_tree() -> set[str]:
    """The paths of the README's Layout tree (`core/`, `core/errors.py`, `bundle/verifier/`…)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```\nsortition/\n", 1)[1].split("```", 1)[0]
    out, folders = set(), []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        folders = folders[:depth - 1]
        path = "".join(folders) + name
        out.add(path)
        if name.endswith("/"):
            folders.append(name)
    return out


def test_the_readme_tree_names_every_module():
    actual = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name != "__init__.py" or len(rel.parts) == 1:
            actual.add(rel.as_posix())
        else:
            actual.add(rel.parent.as_posix() + "/")  # a layer, or a package such as verifier/
    assert _readme_tree() == actual


# The checker on made-up packages -----------------------------------------------------------------


def _fake(tmp_path: Path, files: dict[str, str]) -> dict[str, tuple[Path, list[Import]]]:
    root = tmp_path / "sortition"
    for name, text in {"__init__.py": "", "cli.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != root and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return scan(root)


def test_an_upward_import_is_refused(tmp_path):
    found = _fake(tmp_path, {"core/errors.py": "from ..bundle.audit import SCHEMA\n",
                             "bundle/audit.py": "from ..core.errors import InputError\n"})
    lines = problems(found)
    assert any("core/errors.py:1: imports sortition.bundle.audit (layer bundle) from layer core"
               in line for line in lines), lines


def test_a_downward_or_sideways_import_is_accepted(tmp_path):
    found = _fake(tmp_path, {"core/errors.py": "",
                             "core/limits.py": "from .errors import InputError\n",
                             "bundle/audit.py": "from ..core import limits\n"
                                                "import sortition.core.errors\n",
                             "cli.py": "def main():\n    from .bundle.audit import x\n"})
    assert problems(found) == []
    assert Import("sortition.core.limits", 1, False) in found["sortition.bundle.audit"][1]


def test_an_import_inside_a_function_is_refused_outside_cli(tmp_path):
    found = _fake(tmp_path, {"core/errors.py": "",
                             "inputs/pool.py": "def load():\n    from ..core.errors import E\n"})
    assert problems(found) == [f"{tmp_path}/sortition/inputs/pool.py:2: imports "
                               "sortition.core.errors inside a function (only cli.py may; import "
                               "at the top of the module)"]


def test_a_cycle_is_refused_even_inside_one_layer(tmp_path):
    found = _fake(tmp_path, {"inputs/pool.py": "from . import strata\n",
                             "inputs/strata.py": "from .fingerprint import x\n",
                             "inputs/fingerprint.py": "from .pool import Pool\n"})
    assert problems(found) == ["import cycle: sortition.inputs.fingerprint ↔ "
                               "sortition.inputs.pool ↔ sortition.inputs.strata"]


def test_an_upward_import_from_the_command_line_package_is_refused(tmp_path):
    found = _fake(tmp_path, {"operations/verify.py": "from sortition.cli import main\n",
                             "stray.py": ""})
    lines = problems(found)
    assert any("imports sortition.cli (layer cli) from layer operations" in line
               for line in lines), lines
    assert any("stray.py: in no layer" in line for line in lines), lines
