"""The package's shape: no import circle, no module shadowing a public name, no TensorFlow in
the model library's import."""

import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGES = ("ghostnet_keras", "training", "tflite")


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
