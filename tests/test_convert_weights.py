"""Converting official / timm GhostNet checkpoints: numerical parity with PyTorch."""

import re

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
from ghostnet_keras import convert_weights, converters, extras
from ghostnet_keras.converters import ghostnet as ghostnet_converter

BUILDERS = {
    "ghostnet_050": ghostnet_keras.GhostNet050,
    "ghostnet_100": ghostnet_keras.GhostNet100,
    "ghostnet_130": ghostnet_keras.GhostNet130,
}


@pytest.fixture(scope="module")
def images(imagenette_dir):
    return reference_images(imagenette_dir)[[0, 3, 6, 10]]  # 3 real images, 1 of noise


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_parity_with_timm(name, images, tmp_path):
    import_torch_timm()
    reference = seeded_timm_model(name)
    checkpoint = save_checkpoint(reference, tmp_path / f"{name}.pth")
    n_tensors = sum(1 for k in reference.state_dict() if not k.endswith("num_batches_tracked"))
    assert n_tensors == 432

    # With the top: logits on 10 Imagenette images and 2 random ones.
    output = tmp_path / f"{name}.weights.h5"
    converted = convert_weights.convert_checkpoint(checkpoint, name, output)
    plan = convert_weights.weight_plan(converted, converters.get("ghostnet"))
    assert len(plan) == n_tensors
    model = BUILDERS[name](weights=output, classifier_activation=None)
    diff = assert_parity(torch_outputs(reference, images), model(images, training=False).numpy())
    print(f"{name}: max |logit difference| {diff:.2e}")

    # Without the top: the last feature map (batch, 7, 7, channels).
    notop = tmp_path / f"{name}_notop.weights.h5"
    backbone = convert_weights.convert_checkpoint(checkpoint, name, notop, include_top=False)
    assert notop.exists()
    features = backbone(images, training=False).numpy()
    expected = torch_outputs(reference, images, features=True)
    assert features.shape == expected.shape
    assert_parity(expected, features, top5=False)


def test_safetensors_matches_pth(tmp_path):
    import_torch_timm()
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="needs safetensors")
    reference = seeded_timm_model("ghostnet_050")
    pth = save_checkpoint(reference, tmp_path / "model.pth")
    st = tmp_path / "model.safetensors"
    safetensors_torch.save_file(reference.state_dict(), str(st))
    a, b = convert_weights.read_state_dict(pth), convert_weights.read_state_dict(st)
    assert a.keys() == b.keys() and len(a) == 512
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_wrapped_and_data_parallel_checkpoints(tmp_path):
    torch, _ = import_torch_timm()
    state = seeded_timm_model("ghostnet_050").state_dict()
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(wrapped, tmp_path / "wrapped.pth.tar")
    tensors = convert_weights.read_state_dict(tmp_path / "wrapped.pth.tar")
    assert sorted(tensors) == sorted(state)


def test_other_width_is_reported(tmp_path):
    import_torch_timm()
    checkpoint = save_checkpoint(seeded_timm_model("ghostnet_050"), tmp_path / "half.pth")
    with pytest.raises(ValueError) as info:
        convert_weights.convert_checkpoint(checkpoint, "ghostnet_100", tmp_path / "x.weights.h5")
    message = str(info.value)
    assert "does not match ghostnet_100" in message
    assert (
        "conv_stem.weight: checkpoint (8, 3, 3, 3), ghostnet_100 expects (16, 3, 3, 3)" in message
    )
    assert "looks like ghostnet_050" in message
    assert not (tmp_path / "x.weights.h5").exists()


def test_other_architecture_is_reported(tmp_path):
    torch, timm = import_torch_timm()
    torch.manual_seed(0)
    other = timm.create_model("ghostnetv2_100", pretrained=False)
    checkpoint = save_checkpoint(other, tmp_path / "v2.pth")
    with pytest.raises(ValueError) as info:
        convert_weights.convert_checkpoint(checkpoint, "ghostnet_100", tmp_path / "x.weights.h5")
    message = str(info.value)
    assert "unexpected blocks." in message and "short_conv" in message
    assert message.count("\n") <= 3 * convert_weights.MAX_REPORTED + 2


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_checkpoint(tmp_path, suffix):
    torch, _ = import_torch_timm()
    pytest.importorskip("safetensors", reason="needs safetensors")
    from safetensors.torch import save_file

    state = seeded_timm_model("ghostnet_050").state_dict()
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        convert_weights.read_state_dict(path)


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # `import torch` fails
    with pytest.raises(ImportError, match=re.escape(extras.install_hint("convert"))):
        convert_weights.read_state_dict(path)


def test_name_mapping():
    torch_prefix = ghostnet_converter.torch_prefix
    assert torch_prefix("stem_conv") == "conv_stem"
    assert torch_prefix("blocks_6_3_se_reduce") == "blocks.6.3.se.conv_reduce"
    assert torch_prefix("blocks_3_0_ghost2_cheap_bn") == ("blocks.3.0.ghost2.cheap_operation.1")
    assert torch_prefix("blocks_1_0_shortcut_pw_conv") == "blocks.1.0.shortcut.2"
    assert torch_prefix("blocks_9_bn") == "blocks.9.0.bn1"
    assert torch_prefix("head") == "conv_head"
    with pytest.raises(KeyError):
        torch_prefix("blocks_3_0_add")


def test_cli(tmp_path, capsys):
    import_torch_timm()
    checkpoint = save_checkpoint(seeded_timm_model("ghostnet_050"), tmp_path / "half.pth")
    output = tmp_path / "out" / "half.weights.h5"
    argv = [f"--checkpoint={checkpoint}", "--model=ghostnet_050", f"--output={output}"]
    assert convert_weights.main(argv) == 0
    assert output.exists() and "Converted 432 tensors" in capsys.readouterr().out

    assert convert_weights.main([*argv[:1], "--model=ghostnet_100", argv[2]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "ghostnet_050" in err

    missing = [f"--checkpoint={tmp_path / 'nope.pth'}", f"--output={output}"]
    assert convert_weights.main(missing) == 2
    assert capsys.readouterr().err.startswith("error: Checkpoint not found")

    with pytest.raises(SystemExit) as info:
        convert_weights.main([*argv[:1], "--model=resnet56", argv[2]])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_backbone_file_loads_into_builder(tmp_path):
    import_torch_timm()
    reference = seeded_timm_model("ghostnet_050")
    checkpoint = save_checkpoint(reference, tmp_path / "half.pth")
    notop = tmp_path / "half_notop.weights.h5"
    assert (
        convert_weights.main(
            [
                f"--checkpoint={checkpoint}",
                "--model=ghostnet_050",
                f"--output={notop}",
                "--no-include-top",
            ]
        )
        == 0
    )
    model = ghostnet_keras.GhostNet050(include_top=False, weights=notop, pooling="avg")
    state = reference.state_dict()
    np.testing.assert_array_equal(
        model.get_layer("blocks_9_bn").moving_variance.numpy(),
        state["blocks.9.0.bn1.running_var"].numpy(),
    )
    np.testing.assert_array_equal(
        model.get_layer("stem_conv").kernel.numpy(),
        state["conv_stem.weight"].numpy().transpose(2, 3, 1, 0),
    )
