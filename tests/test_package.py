"""The package's shape: no import circle, no module shadowing a public name, no TensorFlow in
the model library's import."""

import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGES = ("ghostnet_keras", "training", "tflite", "benchmarks")


def _modules():
    """``{module name: path}`` of every module of ``PACKAGES``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(tree, modules, module_level_only):
    """Project modules imported by the statements of ``tree`` (inside functions too, unless
    ``module_level_only``); ``from a import b`` counts ``a.b`` when it is a module, else ``a``."""

    def walk(node, top):
        for child in ast.iter_child_nodes(node):
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if inner and module_level_only:
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    yield full if full in modules else child.module
            yield from walk(child, top and not inner)

    return {name for name in walk(tree, True) if name in modules}


def _graph(module_level_only):
    modules = _modules()
    return {
        name: _imports(ast.parse(path.read_text()), modules, module_level_only) - {name}
        for name, path in modules.items()
    }


def _find_cycle(graph):
    """One import circle ``[a, b, ..., a]`` of ``graph``, or ``None``."""
    state = {}  # 1: on the current path, 2: done
    path = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_is_read():
    graph = _graph(module_level_only=False)
    assert "ghostnet_keras.skeleton" in graph["ghostnet_keras.ghostnet"]
    assert "ghostnet_keras.registry" in graph["ghostnet_keras.skeleton"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_at_module_level():
    cycle = _find_cycle(_graph(module_level_only=True))
    assert cycle is None, " -> ".join(cycle)


def test_no_import_circle_through_lazy_imports():
    """Imports inside functions count too: a module must not import itself through others."""
    cycle = _find_cycle(_graph(module_level_only=False))
    assert cycle is None, " -> ".join(cycle)


PROBE = r"""
import importlib, json, pkgutil, sys
try:
    import torch  # before TensorFlow, which the other packages may import
except ImportError:
    pass
import ghostnet_keras
report = {"tensorflow_after_import": "tensorflow" in sys.modules}
public = {name: getattr(ghostnet_keras, name) for name in ghostnet_keras.__all__}
skipped, failed = {}, {}
for package in ("ghostnet_keras", "training", "tflite", "benchmarks"):
    try:
        root = importlib.import_module(package)
    except ImportError as err:
        skipped[package] = str(err)
        continue
    names = [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]
    for name in names:
        if name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            importlib.import_module(name)
        except ImportError as err:  # an extra that is not installed here
            skipped[name] = str(err)
        except Exception as err:
            failed[name] = f"{type(err).__name__}: {err}"
report["changed"] = sorted(
    name for name, obj in public.items() if getattr(ghostnet_keras, name, None) is not obj
)
report["skipped"], report["failed"] = skipped, failed
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def probe():
    """Imports the package, then every submodule of the project, in a fresh interpreter whose
    Keras backend is not TensorFlow (jax where installed, else torch)."""
    import importlib.util

    backend = next((b for b in ("jax", "torch") if importlib.util.find_spec(b)), None)
    if backend is None:
        pytest.skip("needs jax or torch for a Keras backend other than TensorFlow")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_ghostnet_keras_does_not_import_tensorflow(probe):
    assert probe["tensorflow_after_import"] is False


def test_importing_every_submodule_keeps_every_public_name(probe):
    assert probe["failed"] == {}
    assert probe["changed"] == []


SUBMODULES_FIRST = r"""
import importlib, pkgutil
import ghostnet_keras
for info in pkgutil.walk_packages(ghostnet_keras.__path__, "ghostnet_keras."):
    if info.name.rsplit(".", 1)[-1] == "__main__" or ".data" in info.name:
        continue
    importlib.import_module(info.name)
wrong = sorted(
    name for name in ghostnet_keras.__all__
    if name != "blocks" and type(getattr(ghostnet_keras, name)).__name__ == "module"
)
print(",".join(wrong))
"""


def test_public_names_survive_submodules_imported_first():
    """No submodule is named after a public function: importing every submodule before any
    public name is looked up leaves each name a function or class, not a module."""
    result = subprocess.run(
        [sys.executable, "-c", SUBMODULES_FIRST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"public names shadowed by modules: {result.stdout}"


def test_keras_graph_names_what_a_changed_keras_broke(monkeypatch):
    """The owner's guards: a Keras without one of the private attributes, or without
    clone_model's ``call_function``, is one error naming what is missing and the version."""
    import keras

    from ghostnet_keras import keras_graph

    class Layer:  # a layer of a Keras that renamed ``_inbound_nodes``
        __module__ = "keras.src.layers.layer"

    with pytest.raises(
        RuntimeError, match=r"keras 3\.\S+ has no `Layer\._inbound_nodes`.*3\.15\.1"
    ):
        keras_graph.inbound_nodes(Layer())

    def clone_model(model, input_tensors=None, clone_function=None):
        raise AssertionError("not called")

    monkeypatch.setattr(keras.models, "clone_model", clone_model)
    with pytest.raises(RuntimeError, match="`call_function`.*Received: keras 3"):
        keras_graph.rebuild(None, call_function=lambda layer, *args: layer(*args))


# --- The layers of docs/architecture.md ------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _layer_table():
    """``{layer: (package, allowed layers, allowed modules, everything)}`` read from the
    table of docs/architecture.md (a row may hold several layers, one package each)."""
    import re

    lines = ARCHITECTURE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| layer | package |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    table = {}
    for names, packages, _, allowed in rows:
        names = [n.strip() for n in names.split(",")]
        packages = [  # "(without `data/`)": a remark, the data row has its own package
            p.rstrip("/").replace("/", ".")
            for p in re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", packages))
        ]
        assert len(names) == len(packages), (names, packages)
        layers = {w for w in re.findall(r"[a-z]+", re.sub(r"`[^`]*`", "", allowed))}
        modules = set(re.findall(r"`([^`]+)`", allowed))
        for name, package in zip(names, packages, strict=True):
            table[name] = (package, layers, modules, allowed == "everything")
    return table


def _layer_of(module, table):
    """The layer of ``module``: the one whose package is its longest prefix."""
    best = None
    for name, (package, *_) in table.items():
        if module == package or module.startswith(package + "."):
            if best is None or len(package) > len(table[best][0]):
                best = name
    return best


def _layer_violations(graph, table):
    """``"a -> b (layer x may not import layer y)"`` for every import the table forbids."""
    found = []
    for module, targets in graph.items():
        layer = _layer_of(module, table)
        _, layers, modules, everything = table[layer]
        for target in sorted(targets):
            other = _layer_of(target, table)
            if other == layer or everything or other in layers or target in modules:
                continue
            found.append(f"{module} -> {target} (layer {layer} may not import layer {other})")
    return found


def test_every_layer_imports_only_what_the_architecture_table_allows():
    """Every module of every layer, its lazy imports included, against docs/architecture.md."""
    table = _layer_table()
    assert set(table) == {"models", "data", "training", "tflite", "benchmarks"}
    assert table["data"][2] == {
        "ghostnet_keras.constants",
        "ghostnet_keras.extras",
        "ghostnet_keras.cli",
    }
    graph = _graph(module_level_only=False)
    assert _layer_violations(graph, table) == []
    # The check sees each kind of wrong import.
    wrong = {
        "ghostnet_keras.ghostifier": {"ghostnet_keras.data.folders"},
        "ghostnet_keras.data.pipeline": {"ghostnet_keras.skeleton", "ghostnet_keras.files"},
        "training.loop": {"tflite.export"},
        "ghostnet_keras.data.specs": {"ghostnet_keras.extras"},
    }
    assert [v.split(" (")[0] for v in _layer_violations(wrong, table)] == [
        "ghostnet_keras.ghostifier -> ghostnet_keras.data.folders",
        "ghostnet_keras.data.pipeline -> ghostnet_keras.files",
        "ghostnet_keras.data.pipeline -> ghostnet_keras.skeleton",
        "training.loop -> tflite.export",
    ]


def test_the_architecture_document_names_every_module():
    text = ARCHITECTURE.read_text()
    missing = [
        str(path.relative_to(ROOT))
        for name, path in _modules().items()
        if not name.startswith("benchmarks") and path.name != "__init__.py"
        if path.name not in text
    ]
    assert missing == [], f"modules docs/architecture.md does not describe: {missing}"


# --- Keras's private API: one owner -------------------------------------------------------

# The modules that may touch Keras's private attributes: the graph walker, and the training
# layer's version-guarded workarounds of Keras's trainer.
PRIVATE_API_OWNERS = ("ghostnet_keras/keras_graph.py", "training/keras_compat.py")
# Keras's private graph attributes: flagged outside the owners even where the project
# happens to define a name like them.
KERAS_PRIVATE = {
    "_nodes_by_depth",
    "_inbound_nodes",
    "_outbound_nodes",
    "_keras_history",
    "_layers",
    "_tracker",
    "_functional",
    "_flatten_layers",
    "_operations",
    "_input_layers",
    "_output_layers",
    "_network_nodes",
    "_symbolic_build",
    "_maybe_symbolic_build",
}
# Private attributes of other libraries that the project reads, each with its reason.
FOREIGN_PRIVATE = {
    "_exit": "os._exit: leave at once from a signal handler (standard library)",
    "_get_ops_details": "LiteRT's Interpreter: the op list, for the latency breakdown",
    "_disable_output_quantize": "tfmot's ConcatTransform, patched in the QAT worker",
}
SCANNED = ("ghostnet_keras", "training", "tflite", "benchmarks", "tools")


def _project_files():
    return [p for package in SCANNED for p in sorted((ROOT / package).rglob("*.py"))]


def _defined_private_names(trees):
    """The ``_``-prefixed names the project defines: functions, classes, variables,
    arguments, attributes it assigns, and its own module names."""
    names = {p.stem for p in _project_files()}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {n for n in names if n.startswith("_")}


def _private_reads(tree, defined):
    """``(line, name)`` of every read of a private attribute that is not the project's own:
    ``x._name`` and ``getattr``/``hasattr``/``setattr(x, "_name")``; dunders aside."""
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name = node.args[1].value
        if not name or not name.startswith("_") or name.startswith("__"):
            continue
        if name in KERAS_PRIVATE or (name not in defined and name not in FOREIGN_PRIVATE):
            yield node.lineno, name


def test_only_the_owner_modules_touch_private_keras_attributes():
    """Every read of a ``_``-prefixed attribute outside ``PRIVATE_API_OWNERS`` is of a name the
    project defines itself (or a listed private of another library), never one of Keras's:
    a Keras upgrade that changes its internals then breaks ``ghostnet_keras/keras_graph.py``
    alone."""
    files = _project_files()
    trees = {p: ast.parse(p.read_text()) for p in files}
    defined = _defined_private_names(trees.values())
    found = [
        f"{path.relative_to(ROOT)}:{line}: .{name}"
        for path, tree in trees.items()
        if path.relative_to(ROOT).as_posix() not in PRIVATE_API_OWNERS
        for line, name in _private_reads(tree, defined)
    ]
    assert found == [], "private Keras attributes read outside keras_graph.py:\n" + "\n".join(found)
    # The check sees what it must: a graph walk as the rewriters wrote it before.
    probe = ast.parse(
        "for n in layer._inbound_nodes: pass\n"
        "hasattr(model, '_nodes_by_depth')\n"
        "t._keras_history.operation\n"
        "model._some_new_private\n"
        "self._cache = 1\nself._cache\n"
    )
    assert [name for _, name in sorted(_private_reads(probe, defined | {"_cache"}))] == [
        "_inbound_nodes",
        "_nodes_by_depth",
        "_keras_history",
        "_some_new_private",
    ]


# --- What help() shows ---------------------------------------------------------------------


def _check_builder_help(builder, required):
    """``builder``'s signature is its real named arguments, ``required`` among them, and
    ``help(builder)`` shows that signature and its docstring."""
    import inspect
    import pydoc

    signature = inspect.signature(builder)
    kinds = {p.kind for p in signature.parameters.values()}
    assert kinds == {inspect.Parameter.POSITIONAL_OR_KEYWORD}, (builder.__name__, signature)
    assert set(required) <= set(signature.parameters), (builder.__name__, signature)
    assert inspect.getfullargspec(builder).args == list(signature.parameters)
    doc = inspect.getdoc(builder)
    assert doc and builder.__name__ not in ("builder", "wrap"), builder.__name__
    shown = pydoc.render_doc(builder, renderer=pydoc.plaintext)
    assert f"{builder.__name__}{signature}" in shown
    assert doc.splitlines()[0] in shown


def test_help_of_every_builder_shows_its_arguments_and_docstring():
    """``help(GhostNet100)`` and an IDE see the real arguments of every registry builder and
    of the family builders behind them, not ``(*args, **kwargs)``."""
    import ghostnet_keras
    from ghostnet_keras import registry, skeleton

    application = [name for name, _ in skeleton.APPLICATION_ARGS] + ["name"]
    names = ghostnet_keras.list_models()
    assert len(names) > 20
    families = {}
    for name in names:
        builder = registry.get_builder(name)
        _check_builder_help(builder, application)
        family = skeleton._VARIANTS.get(name)
        if family is not None:
            families[family.__name__] = family
    assert {"GhostNet", "GhostNetV3", "resnet"} <= set(families)
    for family in families.values():
        _check_builder_help(family, application)
    # What a builder without its signature would show, so that the check can fail.
    with pytest.raises(AssertionError):
        _check_builder_help(lambda *args, **kwargs: None, application)
