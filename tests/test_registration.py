"""One place per model: every list that names models derives from its catalogue row.

A registered model must be reachable from every list: the package's public names, the
registry (``create_model``/``list_models``) and its modules, the converters' model lists and
the weights entries. Registering a builder without a row (or under another name) fails.
"""

import ast
import importlib
import json
import os
import subprocess
import sys

import pytest

import ghostnet_keras
from ghostnet_keras import catalog, converters, pretrained, registry

from conftest import ROOT


def test_every_registered_model_is_reachable_from_every_list():
    registered = registry.list_models()
    assert registered == sorted(catalog.MODELS)  # no row without a builder, nor the reverse
    modules = set()
    for name in registered:
        builder, row = registry.get_builder(name), catalog.MODELS[name]
        module = importlib.import_module(builder.__module__)
        modules.add(module.__name__)
        assert builder.__module__ == f"ghostnet_keras.{row.module}", name
        assert getattr(module, row.public) is builder, name  # the name it is defined under
        assert row.public in ghostnet_keras.__all__, name
        assert getattr(ghostnet_keras, row.public) is builder, name
        assert registry.get_pretrained(name) is row.weights, name
        # The converters that fill it, in the order `convert_weights` tries them.
        fill = [m.name for m in converters.for_model(name)]
        assert fill == [c for c in converters.CONVERTERS if c in row.converters], name
        assert set(row.converters) <= set(converters.CONVERTERS), name
        assert (name in converters.convertible_models()) == bool(row.converters), name
    assert set(registry.MODEL_MODULES) == modules  # every family module registers a model
    for key in converters.CONVERTERS:
        mapping = converters.get(key)
        assert mapping.name == key
        assert set(mapping.models) <= set(registered), key
    for name, entry in pretrained.entries().items():  # `model` or `model.tag`
        model = name.split(".")[0]
        assert model in registered, name
        assert entry.converter in catalog.MODELS[model].converters, name
        assert model in converters.get(entry.converter).models, name
        assert entry.variant == converters.get(entry.converter).variant, name
    # The lists a user meets name the same models.
    assert [row["model"] for row in pretrained.weights_table()] == registered
    assert sorted(n for n in pretrained.available_models() if "." not in n) == [
        n for n in registered if catalog.has_weights(n)
    ]


def test_registering_without_a_matching_catalogue_row_fails(monkeypatch):
    def Builder():  # noqa: N802 - a builder's name, as the models' are
        return None

    Builder.__module__ = "ghostnet_keras.ghostnet"
    registry.list_models()  # every family registered first
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    with pytest.raises(ValueError, match=r"catalog\.py.*Received: name='ghostnet_999'"):
        registry.register_model("ghostnet_999")(Builder)
    row = catalog.Model("ghostnet", "GhostNet999")
    monkeypatch.setitem(catalog.MODELS, "ghostnet_999", row)
    with pytest.raises(ValueError, match=r"ghostnet\.GhostNet999.*ghostnet\.Builder.*Received"):
        registry.register_model("ghostnet_999")(Builder)
    with pytest.raises(ValueError, match="already registered.*Received: name='ghostnet_100'"):
        registry.register_model("ghostnet_100")(Builder)
    assert "ghostnet_999" not in registry._MODELS
    Builder.__name__ = "GhostNet999"
    assert registry.register_model("ghostnet_999")(Builder) is Builder
    assert registry.get_builder("ghostnet_999") is Builder


def _imported(path):
    """Project modules ``path`` imports anywhere (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "ghostnet_keras":
                found |= {f"ghostnet_keras.{alias.name}" for alias in node.names}
    return found


def test_weights_entries_are_data_below_the_families():
    package = ROOT / "ghostnet_keras"
    # The catalogue imports nothing of the project but the shared constants, and no Keras.
    imports = _imported(package / "catalog.py")
    assert {m for m in imports if m.startswith("ghostnet_keras")} == {"ghostnet_keras.constants"}
    assert not any(m.split(".")[0] in ("keras", "tensorflow", "torch") for m in imports)
    # Downloading and converting sit above the registry: no family (nor the registry)
    # imports them.
    for module in (*registry.MODEL_MODULES, "ghostnet_keras.registry"):
        path = package / f"{module.rsplit('.', 1)[1]}.py"
        below = {m for m in _imported(path) if m.startswith("ghostnet_keras")}
        assert not below & {"ghostnet_keras.pretrained", "ghostnet_keras.converters"}, module


LISTS_WITHOUT_KERAS = """
import json, sys
import ghostnet_keras
from ghostnet_keras import converters, pretrained, registry
print(json.dumps({
    "public": len(ghostnet_keras.__all__),
    "convertible": len(converters.convertible_models()),
    "weights": len(pretrained.available_models()),
    "modules": len(registry.MODEL_MODULES),
    "loaded": sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules),
}))
"""


def test_the_lists_are_read_without_loading_keras():
    """The public names, the converters' models, the weights listing and the registry's
    modules come from the catalogue, so command lines read them before a backend loads."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", LISTS_WITHOUT_KERAS],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert report["public"] == len(ghostnet_keras.__all__)
    assert report["convertible"] == len(converters.convertible_models()) > 0
    assert report["weights"] == len(pretrained.available_models()) > 0
    assert report["modules"] == len(registry.MODEL_MODULES) > 0
