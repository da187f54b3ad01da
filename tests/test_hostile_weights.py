"""Hostile and mismatched weight files: each gives one clear error, allocates nothing big
and deletes nothing of the user's. Every file here is crafted by the test, and small."""

import numpy as np
import pytest

from ghostnet_keras import convert_weights


def _mobilenetv3_like():
    """A few tensors named as in timm's MobileNetV3 (conv_stem, blocks.0.0.conv_dw, ...):
    no converter recognises it."""
    rng = np.random.default_rng(0)
    shapes = {
        "conv_stem.weight": (16, 3, 3, 3),
        "bn1.weight": (16,),
        "bn1.bias": (16,),
        "blocks.0.0.conv_dw.weight": (16, 1, 3, 3),
        "blocks.0.0.conv_pw.weight": (16, 16, 1, 1),
        "blocks.6.0.conv.weight": (960, 160, 1, 1),
        "conv_head.weight": (1280, 960, 1, 1),
        "classifier.weight": (1000, 1280),
    }
    return {k: rng.standard_normal(s).astype("float32") for k, s in shapes.items()}


def test_checkpoint_of_an_unknown_family_is_one_clear_error(tmp_path, capsys):
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
    checkpoint = tmp_path / "mobilenetv3.safetensors"
    safetensors_numpy.save_file(_mobilenetv3_like(), str(checkpoint))
    output = tmp_path / "out.weights.h5"
    args = [f"--checkpoint={checkpoint}", "--model=ghostnet_100", f"--output={output}"]
    assert convert_weights.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: mobilenetv3.safetensors does not match ghostnet_100")
    assert "It does not look like a checkpoint of the official C-GhostNet" in err
    assert not output.exists()
