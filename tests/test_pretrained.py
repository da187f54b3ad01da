"""`weights="imagenet"` end to end, offline: a checkpoint made from the seeded timm
model is served from a `file://` origin into a temporary Keras cache."""

import dataclasses
import os
import sys

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
from ghostnet_keras import pretrained


def test_models_without_weights_are_refused():
    for builder in (ghostnet_keras.GGhostNet100, ghostnet_keras.GhostResNet50S2):
        with pytest.raises(ValueError, match="models that have them: g_ghost_regnetx_032, "):
            builder(weights="imagenet")


def test_published_entry():
    entry = pretrained.PRETRAINED["ghostnet_100"]
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
    images = reference_images(imagenette_dir)
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
        include_top=False, weights="imagenet", input_shape=(224, 224, 3)
    )
    assert_parity(features, backbone(images, training=False).numpy(), top5=False)
    assert os.stat(converted).st_mtime_ns == stamp and not cached.exists()


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


def test_corrupted_cache_is_downloaded_again(served, checkpoint_bytes):
    cached = served()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(corrupted(checkpoint_bytes))
    assert pretrained.fetch_checkpoint("ghostnet_100") == str(cached)
    assert cached.read_bytes() == checkpoint_bytes


def test_truncated_checkpoint_without_digest(served, checkpoint_bytes):
    cached = served(data=checkpoint_bytes[: len(checkpoint_bytes) // 3], sha256=None)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ghostnet_keras.GhostNet100(weights="imagenet")
    assert not os.path.exists(pretrained.converted_path("ghostnet_100"))
    assert not cached.exists()  # the next attempt downloads it again


def test_conversion_without_torch_names_the_extra(served, monkeypatch):
    cached = served()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"ghostnet-keras\[convert\]"):
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
