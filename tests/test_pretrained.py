"""`weights="imagenet"` end to end, offline: a checkpoint made from the seeded timm
model is served from a `file://` origin into a temporary Keras cache."""

import dataclasses
import os
import pickle
import re
import sys
import traceback

import h5py
import numpy as np
import pytest
from torch_reference import (
    assert_parity,
    import_torch_timm,
    reference_images,
    save_checkpoint,
    seeded_timm_model,
    torch_outputs,
)

import ghostnet_keras
from ghostnet_keras import extras, pretrained


def test_models_without_weights_are_refused():
    for builder in (ghostnet_keras.GGhostNet100, ghostnet_keras.GhostResNet50S2):
        with pytest.raises(ValueError, match="models that have them: g_ghost_regnetx_032, "):
            builder(weights="imagenet")


def test_published_entry():
    entry = pretrained.get_entry("ghostnet_100")
    assert entry.url == (
        "https://github.com/huawei-noah/CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth"
    )
    assert entry.file_name == "ghostnet_1x.pth"
    hub_style = dataclasses.replace(entry, url="https://x/ghostnet_1x-f97d70db.pth")
    assert hub_style.expected_hashes == ["f97d70db"]


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    import_torch_timm()
    path = tmp_path_factory.mktemp("ckpt") / "ghostnet_1x.pth"
    save_checkpoint(seeded_timm_model("ghostnet_100"), path)
    return path.read_bytes()


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Serves bytes as the published checkpoint of a model from a ``file://`` origin, into
    a temporary Keras cache; returns where the download is cached."""
    origin, home = tmp_path / "origin", tmp_path / "keras_home"
    origin.mkdir()
    monkeypatch.setenv(pretrained.ORIGIN_ENV, origin.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(home))
    published = pretrained.entries()
    served_entries = {}
    monkeypatch.setattr(pretrained, "entries", lambda: {**published, **served_entries})

    def serve_(name, data, sha256=None, file_name=None):
        entry = published[name]
        file_name = file_name or entry.file_name
        (origin / file_name).write_bytes(data)
        url = f"https://example.invalid/{file_name}"
        served_entries[name] = dataclasses.replace(entry, url=url, sha256=sha256)
        return home / "models" / file_name

    return serve_


@pytest.fixture
def served(serve, checkpoint_bytes):
    """Serves ``checkpoint_bytes`` (or other bytes) as the checkpoint of ``ghostnet_100``."""
    digest = pretrained.sha256_of_bytes(checkpoint_bytes)

    def serve_ghostnet(data=checkpoint_bytes, sha256=digest, file_name="ghostnet_1x.pth"):
        return serve("ghostnet_100", data, sha256, file_name)

    return serve_ghostnet


def corrupted(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def test_imagenet_end_to_end(served, imagenette_dir, monkeypatch):
    cached = served()
    images = reference_images(imagenette_dir)[[0, 3, 6, 10]]  # 3 real images, 1 of noise
    reference = seeded_timm_model("ghostnet_100")

    logits = torch_outputs(reference, images)
    features = torch_outputs(reference, images, features=True)

    model = ghostnet_keras.GhostNet100(weights="imagenet", classifier_activation=None)
    assert_parity(logits, model(images, training=False).numpy())
    converted = pretrained.converted_path("ghostnet_100")
    assert cached.exists() and os.path.exists(converted)
    assert os.path.dirname(converted) == str(cached.parent)
    stamp = os.stat(converted).st_mtime_ns

    # The second time reuses the cached conversion: no PyTorch, no download, no rewrite.
    monkeypatch.setitem(sys.modules, "torch", None)
    os.remove(cached)
    backbone = ghostnet_keras.GhostNet100(
        include_top=False, weights="imagenet", input_shape=(224, 224, 3), classes=10
    )
    assert_parity(features, backbone(images, training=False).numpy(), top5=False)
    assert os.stat(converted).st_mtime_ns == stamp and not cached.exists()
    # As keras.applications: a head of another size cannot take the ImageNet weights.
    with pytest.raises(ValueError, match="`classes` should be 1000. Received: classes=10"):
        ghostnet_keras.GhostNet100(weights="imagenet", classes=10)


def test_corrupted_download_is_rejected(served, checkpoint_bytes):
    cached = served(data=corrupted(checkpoint_bytes))
    with pytest.raises(ValueError, match="SHA-256"):
        ghostnet_keras.GhostNet100(weights="imagenet")
    assert not cached.exists() and not os.path.exists(pretrained.converted_path("ghostnet_100"))


def test_hub_style_hash_prefix_in_file_name(served, checkpoint_bytes):
    prefix = pretrained.sha256_of_bytes(checkpoint_bytes)[:8]
    name = f"ghostnet_1x-{prefix}.pth"
    served(data=corrupted(checkpoint_bytes), sha256=None, file_name=name)
    with pytest.raises(ValueError, match=f"expected {prefix}"):
        pretrained.fetch_checkpoint("ghostnet_100")
    cached = served(sha256=None, file_name=name)
    assert pretrained.fetch_checkpoint("ghostnet_100") == str(cached)


def test_a_cached_file_that_fails_the_check_is_named_and_kept(served, checkpoint_bytes):
    # It may be the user's own (the offline message says to put one there): never deleted
    # or overwritten by a new download.
    cached = served()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(corrupted(checkpoint_bytes))
    with pytest.raises(ValueError) as info:
        pretrained.fetch_checkpoint("ghostnet_100")
    message = str(info.value)
    assert message.startswith(f"{cached} is corrupt or not the published file: its SHA-256")
    assert "already in the cache" in message and "left as it is" in message
    assert cached.read_bytes() == corrupted(checkpoint_bytes)


def test_a_file_the_user_placed_is_never_deleted(serve, tmp_path):
    # Issue 23: following the offline message with a file that cannot be converted.
    torch, _ = import_torch_timm()
    user_file = serve("ghostnet_100", b"never read", sha256=None)
    user_file.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.ones(8, 3, 3, 3)}, user_file)
    placed = user_file.read_bytes()
    with pytest.raises(ValueError) as info:
        ghostnet_keras.GhostNet100(weights="imagenet")
    first = str(info.value).splitlines()[0]
    assert first.startswith("ghostnet_1x.pth does not match ghostnet_100")
    assert "already in the cache" in first and "is left as it is" in first
    assert user_file.read_bytes() == placed
    assert not os.path.exists(pretrained.converted_path("ghostnet_100"))


def test_truncated_checkpoint_without_digest(served, checkpoint_bytes):
    cached = served(data=checkpoint_bytes[: len(checkpoint_bytes) // 3], sha256=None)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ghostnet_keras.GhostNet100(weights="imagenet")
    assert not os.path.exists(pretrained.converted_path("ghostnet_100"))
    assert not cached.exists()  # the next attempt downloads it again


def test_conversion_without_torch_names_the_extra(served, monkeypatch):
    cached = served()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=re.escape(extras.install_hint("convert"))):
        ghostnet_keras.GhostNet100(weights="imagenet")
    assert cached.exists()  # verified and kept: only the conversion is missing


def test_damaged_cached_conversion_is_redone(served, monkeypatch):
    served()
    target = pretrained.converted_path("ghostnet_100")
    os.makedirs(os.path.dirname(target))
    with open(target, "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    model = ghostnet_keras.GhostNet100(weights="imagenet")
    state = seeded_timm_model("ghostnet_100").state_dict()
    for layer, name in (("head", "conv_head"), ("classifier", "classifier")):
        kernel = state[f"{name}.weight"].numpy().reshape(model.get_layer(layer).units, -1).T
        np.testing.assert_array_equal(model.get_layer(layer).kernel.numpy(), kernel)
    with h5py.File(target) as f:  # a valid Keras weights file again
        assert "layers" in f


def test_model_code_imports_no_torch():
    import subprocess

    code = (
        "import sys, ghostnet_keras; from ghostnet_keras import convert_weights, pretrained; "
        "assert not {'torch', 'safetensors', 'timm'} & set(sys.modules), sorted(sys.modules)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# One download path per converter family: (registry name, how the reference is made).
FAMILIES = {
    "paddleclas_ghostnet": "ghostnet_050",
    "g_ghost_regnet": "g_ghost_regnetx_032",
    "torchvision_resnet": "resnet34",
    "torchvision_regnet": "regnetx_032",
    "timm_regnet": "regnetx_040",
}


@pytest.fixture(scope="module")
def small_images(imagenette_dir):
    return reference_images(imagenette_dir, size=64, n_random=0)[[1, 4, 8]]


def _family_checkpoint(name, tmp_path, images):
    """(checkpoint bytes, reference torch model or None, its state dict) for ``name``."""
    from test_convert_baselines import reference_model
    from test_convert_g_ghost_regnet import official_checkpoint_state

    if name == "ghostnet_050":  # PaddleClas: a .pdparams file and PaddlePaddle's logits
        from test_convert_paddle import paddle_reference

        path, logits = paddle_reference(0.5, images, tmp_path)
        return path.read_bytes(), logits, None
    torch, _ = import_torch_timm()
    if name == "g_ghost_regnetx_032":
        state, model = official_checkpoint_state(), None
    else:
        model = reference_model(name, images=images)
        state = model.state_dict()
    path = tmp_path / "checkpoint"
    if name == "regnetx_040":  # timm's weights are on the Hugging Face hub as safetensors
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path.read_bytes(), model, state


@pytest.mark.parametrize("converter", sorted(FAMILIES))
def test_each_family_downloads_checks_converts_and_loads(converter, serve, tmp_path, small_images):
    name = FAMILIES[converter]
    entry = pretrained.get_entry(name)
    assert entry.converter == converter
    data, reference, state = _family_checkpoint(name, tmp_path, small_images)
    if name == "ghostnet_050":  # the weights choose PaddleClas's variant of the network
        with pytest.raises(ValueError, match="need variant='paddleclas'.*Received: variant="):
            ghostnet_keras.GhostNet050(weights="imagenet", variant="paper")
    file_name = None
    if entry.expected_hashes:  # a hub-style name: the digest prefix of the served bytes
        stem, suffix = entry.file_name.rsplit("-", 1)[0], entry.file_name.rsplit(".", 1)[1]
        file_name = f"{stem}-{pretrained.sha256_of_bytes(data)[:8]}.{suffix}"
    cached = serve(name, data, file_name=file_name)
    model = ghostnet_keras.create_model(
        name, weights="imagenet", input_shape=(64, 64, 3), classifier_activation=None
    )
    assert cached.exists() and os.path.exists(pretrained.converted_path(name))
    if reference is None:  # the official G-Ghost RegNetX: its logits are tested at 224 in
        # test_convert_g_ghost_regnet.py; here the loaded weights are the file's
        kernel = state["layer3.layers.4.conv2.weight"].numpy().transpose(2, 3, 1, 0)
        np.testing.assert_array_equal(model.get_layer("layer3_layers_4_conv2").kernel, kernel)
        np.testing.assert_array_equal(
            model.get_layer("layer2_merge_bn2").moving_variance,
            state["layer2.merge.5.running_var"].numpy(),
        )
        return
    # The library's logits on real images (baselines: classifier scaled to logits of 10).
    expected = reference if name == "ghostnet_050" else torch_outputs(reference, small_images)
    diff = assert_parity(expected, model(small_images, training=False).numpy())
    print(f"{name} ({converter}): max |logit difference| {diff:.2e}")


@pytest.mark.parametrize("converter", sorted(FAMILIES))
def test_each_family_rejects_a_corrupted_copy(converter, serve, tmp_path):
    torch, _ = import_torch_timm()
    name = FAMILIES[converter]
    entry = pretrained.get_entry(name)
    path = tmp_path / "small"
    if entry.file_name.endswith(".pdparams"):
        path.write_bytes(pickle.dumps({"conv1._conv.weight": np.ones((8, 3, 3, 3), "float32")}))
    elif entry.file_name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({"stem.conv.weight": torch.ones(32, 3, 3, 3)}, str(path))
    else:
        torch.save({"conv1.weight": torch.ones(32, 3, 3, 3)}, path)
    data = path.read_bytes()
    if entry.expected_hashes:  # the SHA-256 prefix in the name catches any changed byte
        file_name = f"x-{pretrained.sha256_of_bytes(data)[:8]}.pth"
        cached = serve(name, corrupted(data), file_name=file_name)
        match = "SHA-256"
    else:  # no digest published: the structure check catches a truncated file
        cached = serve(name, data[: len(data) // 2])
        match = "truncated or corrupt"
    with pytest.raises(ValueError, match=match):
        ghostnet_keras.create_model(name, weights="imagenet")
    assert not cached.exists() and not os.path.exists(pretrained.converted_path(name))


def test_offline_error_names_url_cache_and_remedies(monkeypatch, tmp_path, capsys):
    from ghostnet_keras import convert_weights

    monkeypatch.setenv(pretrained.ORIGIN_ENV, "http://127.0.0.1:9/weights")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(pretrained.WeightsDownloadError) as info:
        ghostnet_keras.create_model("resnet34", weights="imagenet")
    message = str(info.value)
    assert isinstance(info.value, OSError) and "\n" not in message
    assert "http://127.0.0.1:9/weights/resnet34-b627a593.pth" in message
    assert str(tmp_path / "models") in message and pretrained.ORIGIN_ENV in message
    assert "KERAS_HOME" in message and "file://" in message
    # The cause is in the message, not in a chained traceback of urllib and Keras.
    assert info.value.__suppress_context__ and info.value.__cause__ is None
    assert "Connection refused" in message or "Errno" in message
    chain = "".join(traceback.format_exception(info.value))
    assert "During handling" not in chain and "direct cause" not in chain

    output = tmp_path / "r34.weights.h5"
    assert convert_weights.main(["--model=resnet34", f"--output={output}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Cannot download the ImageNet weights")
    assert not output.exists()


def test_weights_table_and_entries_are_consistent():
    from ghostnet_keras import converters

    rows = {row["model"]: row for row in pretrained.weights_table()}
    assert set(rows) == set(ghostnet_keras.list_models())
    with_weights = sorted(name for name, row in rows.items() if row["weights"])
    assert with_weights == [
        "g_ghost_regnetx_032",
        "g_ghost_regnetx_040",
        "g_ghost_regnetx_080",
        "g_ghost_regnetx_160",
        "ghostnet_050",
        "ghostnet_100",
        "ghostnet_130",
        "ghostnetv2_100",
        "ghostnetv2_130",
        "ghostnetv2_160",
        "ghostnetv3_100",
        "regnetx_032",
        "regnetx_040",
        "regnetx_080",
        "regnetx_160",
        "resnet34",
        "resnet50",
    ]
    assert rows["ghostnet_130"]["tags"] == ["ssld"] and rows["ghostnet_130"]["top1"] == 75.7
    assert rows["g_ghost_regnetx_160"]["top1"] == 79.9 and rows["resnet56"]["top1"] is None
    listing = pretrained.markdown_table()
    assert '| `g_ghost_regnetx_032` | `weights="imagenet"` | 77.8 | official' in listing
    assert '`weights=pretrained.weights_file("ghostnet_130.ssld")` | 79.4 |' in listing
    assert "| `resnet56` | - | - | - |" in listing
    for name, entry in pretrained.entries().items():
        mapping = converters.get(entry.converter)
        assert name.split(".")[0] in mapping.models and entry.variant == mapping.variant, name
        assert f"{entry.top1}" in entry.url or not entry.url.startswith(
            "https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/g_ghost"
        )  # the official G-Ghost file names carry their top-1


def test_torchvision_entries_are_torchvisions_own():
    import_torch_timm()
    models = pytest.importorskip("torchvision.models", reason="cross-check with torchvision")
    for name, weights in {
        "resnet34": models.ResNet34_Weights.IMAGENET1K_V1,
        "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
        "regnetx_032": models.RegNet_X_3_2GF_Weights.IMAGENET1K_V1,
        "regnetx_080": models.RegNet_X_8GF_Weights.IMAGENET1K_V1,
        "regnetx_160": models.RegNet_X_16GF_Weights.IMAGENET1K_V1,
    }.items():
        entry = pretrained.get_entry(name)
        assert entry.url == weights.url and len(entry.expected_hashes) == 1
        assert entry.top1 == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]


def test_weights_code_imports_no_model_module_at_module_level():
    """pretrained.py, convert_weights.py and the converters call no model code at import
    time (the registry imports pretrained; models are built lazily through the registry)."""
    import ast
    import pathlib

    package = pathlib.Path(ghostnet_keras.__file__).parent
    allowed = {
        "ghostnet_keras.catalog",  # data only: the models and their weights entries
        "ghostnet_keras.cli",
        "ghostnet_keras.constants",
        "ghostnet_keras.extras",
        "ghostnet_keras.files",
    }
    allowed_prefix = ("ghostnet_keras.converters",)
    files = [package / "pretrained.py", package / "convert_weights.py"]
    files += sorted((package / "converters").glob("*.py"))
    for path in files:
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ghostnet"):
                if node.module == "ghostnet_keras":
                    modules = [f"ghostnet_keras.{alias.name}" for alias in node.names]
                else:
                    modules = [node.module]
                for module in modules:
                    assert module in allowed or module.startswith(allowed_prefix), (path, module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("torch", "paddle", "tensorflow")), path


def test_listing_prints_the_columns_the_docs_name(capsys):
    # Issue 23: the listing's columns differed from what the docs said it prints.
    assert pretrained.main([]) == 0
    header, rule, *rows = capsys.readouterr().out.splitlines()
    docs = os.path.join(os.path.dirname(__file__), "..", "docs", "pretrained-weights.md")
    with open(docs, encoding="utf-8") as f:
        assert f"```\n{header}\n```" in f.read()
    assert header.count("|") - 1 == rule.count("|") - 1 == 4
    assert all(row.count("|") == header.count("|") for row in rows)
    assert any(
        row.startswith("| `ghostnet_130` | `weights=pretrained.weights_file(") for row in rows
    )
