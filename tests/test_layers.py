"""The package's layers, read from its imports (every ``import`` statement of yolox_focal/**/*.py,
those inside functions included): no import circle between modules, and no lower layer importing
a higher one. From the bottom up:

- the loss core, ``yolox_focal/losses/``: torch only;
- the adapter (the YOLOX glue): every module of yolox_focal outside ``losses/``, ``runtime/`` and
  ``ablation/``;
- the runtime, ``yolox_focal/runtime/``: what the tools run;
- the ablation, ``yolox_focal/ablation/``: the grid of runs over the runtime, and its report;
- the tools, ``tools/``: the entry points, which nothing in the package imports.

The adapter imports the runtime at one named seam only: the exp's ``get_trainer``, which hands
YOLOX the runtime's trainer."""

import ast

import pytest

from helpers import REPO

pytestmark = pytest.mark.any_yolox

PACKAGE = REPO / "yolox_focal"
SEAM = "get_trainer"  # the one function of the adapter that may import the runtime
LAYERS = ("losses", "adapter", "runtime", "ablation")


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module):
    part = module.split(".")[1] if module.count(".") else None
    return part if part in ("losses", "runtime", "ablation") else "adapter"


def _resolve(importer, node):
    """The yolox_focal modules an import statement names (a ``from X import name`` names the module
    ``X.name`` where there is one, else ``X``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


class _Imports(ast.NodeVisitor):
    """Each import of a module as (imported module, the function it sits in or None)."""

    def __init__(self, importer):
        self.importer, self.function, self.found = importer, None, []

    def visit_FunctionDef(self, node):
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        self.found += [(name, self.function) for name in _resolve(self.importer, node)]

    visit_ImportFrom = visit_Import


def imports():
    """{module: [(imported yolox_focal module, function or None)]} over the whole package."""
    edges = {}
    for module, path in MODULES.items():
        visitor = _Imports(module)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        edges[module] = [(name, function) for name, function in visitor.found
                         if name == "yolox_focal" or name.startswith("yolox_focal.")]
    return edges


def test_the_import_reader_sees_imports_inside_functions_and_relative_ones():
    edges = imports()
    assert ("yolox_focal.runtime.errors", None) in edges["yolox_focal.runtime.distributed"]
    assert any(layer(module) == "adapter" and name.startswith("yolox_focal.runtime.") and function == SEAM
               for module, found in edges.items() for name, function in found)
    assert {layer("yolox_focal.losses.kit"), layer("yolox_focal.head"), layer("yolox_focal.runtime.cli"),
            layer("yolox_focal.ablation.grid")} == set(LAYERS)
    assert ("yolox_focal.runtime.folder_claim", None) in edges["yolox_focal.ablation.runs"]


def test_no_import_circle():
    edges = {module: {name for name, _ in found if name in MODULES} for module, found in imports().items()}
    circles = []

    def visit(module, path):
        for name in sorted(edges[module]):
            if name in path:
                circles.append(path[path.index(name):] + [name])
            elif name not in done:
                visit(name, path + [name])
        done.add(module)

    done = set()
    for module in sorted(edges):
        if module not in done:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_no_layer_imports_a_higher_one_but_at_the_seam():
    wrong = []
    for module, found in imports().items():
        for name, function in found:
            if LAYERS.index(layer(name)) <= LAYERS.index(layer(module)):
                continue
            if layer(module) == "adapter" and layer(name) == "runtime" and function == SEAM:
                continue
            wrong.append(f"{module} imports {name}" + (f" in {function}()" if function else ""))
    assert not wrong, "\n".join(wrong)


def test_nothing_in_the_package_imports_the_tools():
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level]
        assert not [n for n in names if n and n.split(".")[0] in ("tools", "benchmarks")], module
