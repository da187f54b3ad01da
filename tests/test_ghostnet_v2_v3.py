"""GhostNetV2 and GhostNetV3: exact sizes, timm parity (both V3 forms), re-parameterisation,
the DFC gate's upsampling, `.keras` round trips, TFLite float32/int8 all in XNNPACK."""

import os

import numpy as np
import pytest
from torch_reference import (
    assert_parity,
    import_torch_timm,
    reference_images,
    seeded_timm_model,
    torch_outputs,
)

import ghostnet_keras
from ghostnet_keras import blocks_v2, convert_weights, converters, profile
from ghostnet_keras.converters import ghostnet_v2v3
from ghostnet_keras.converters.core import convert_state_dict

# timm 1.0 parameter counts (the V3 deployed form: after timm's reparameterize_model).
EXACT = {
    "ghostnetv2_100": 6_156_908,
    "ghostnetv2_130": 8_960_404,
    "ghostnetv2_160": 12_392_698,
    "ghostnetv3_050": 3_395_384,
    "ghostnetv3_100": 8_129_028,
    "ghostnetv3_130": 12_217_720,
    "ghostnetv3_160": 17_275_700,
}
DEPLOYED = {
    "ghostnetv3_050": 2_853_176,
    "ghostnetv3_100": 6_147_588,
    "ghostnetv3_130": 8_948_296,
    "ghostnetv3_160": 12_377_778,
}
# Multiply-adds at 224x224 (Conv2D + Dense, ghostnet_keras.profile); GhostNetV2 paper
# Table 2: 167M / 269M / 399M FLOPs. A deployed GhostNetV3 costs what GhostNetV2 does.
MACS = {"ghostnetv2_100": 167_048_288, "ghostnetv2_130": 269_322_976, "ghostnetv2_160": 398_607_224}
# Parity images: 96x96 makes the last stage 3x3, so the DFC gate's odd-size upsampling runs.
PARITY_SIZE = 96


# Parameters a 10-class classifier has fewer than the 1000-class one (1280 inputs + bias).
CLASSIFIER_10 = (1280 + 1) * (1000 - 10)


def _params(model):
    """Trainable parameters: what timm counts (BN statistics are buffers there)."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _all_params(model):
    """What timm counts, frozen layers included: every weight but the BN statistics."""
    return sum(int(np.prod(w.shape)) for w in model.weights if "moving_" not in w.path)


# Building a GhostNetV3 (~900 layers) is the cost of these tests: each builds one model, and
# the deployed counts are checked where a model is built anyway (the parity fixture for
# ghostnetv3_100, the round trip for ghostnetv3_050).
@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_params(name):
    model = ghostnet_keras.create_model(name, input_shape=(64, 64, 3), classes=10)
    assert model.name == name and model.output_shape == (None, 10)
    assert _params(model) == EXACT[name] - CLASSIFIER_10  # 10 classes, not 1000


@pytest.mark.parametrize("name", sorted(MACS))
def test_macs(name):
    assert profile(ghostnet_keras.create_model(name), input_shape=224)["macs"] == MACS[name]


def test_builders_registry_and_names():
    assert ghostnet_keras.list_models("ghostnetv*") == sorted(EXACT)
    assert ghostnet_keras.GhostNet100V2.__name__ == "GhostNet100V2"
    assert ghostnet_keras.GhostNet050V3.__name__ == "GhostNet050V3"
    model = ghostnet_keras.GhostNetV2(width=0.5, include_top=False, pooling="avg")
    assert model.output_shape == (None, 480)
    # The first two bottlenecks keep the plain Ghost module, the third has DFC attention.
    names = {layer.name for layer in model.layers}
    assert "blocks_1_0_ghost1_short_conv" not in names
    assert "blocks_2_0_ghost1_short_conv" in names
    # Detection features at strides 4-32: the same stage ends as C-GhostNet's.
    assert ghostnet_keras.feature_layer_names(model) == [
        "blocks_2_0_add",
        "blocks_4_0_add",
        "blocks_6_4_add",
        "blocks_9_relu",
    ]
    with pytest.raises(ValueError, match=r"at least 33x33. Received: input_shape=\(32, 32, 3\)"):
        ghostnet_keras.GhostNetV2(input_shape=(32, 32, 3))


def test_nearest_upsample_is_pytorch_nearest_at_every_size():
    torch, _ = import_torch_timm()
    import keras

    rng = np.random.default_rng(0)
    for size in range(2, 10):
        for other in (size, size + 1):
            x = rng.normal(size=(2, size, other, 3)).astype("float32")
            pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 2)
            want = torch.nn.functional.interpolate(pooled, size=(size, other), mode="nearest")
            layer = blocks_v2.NearestUpsample()
            got = layer([keras.ops.convert_to_tensor(pooled.permute(0, 2, 3, 1).numpy()), x])
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(got), want.permute(0, 2, 3, 1).numpy()
            )


def test_dynamic_input_size_equals_fixed(imagenette_dir):
    """Without a fixed input size the gate's upsampling decides odd/even at run time."""
    import keras

    keras.utils.set_random_seed(0)
    dynamic = ghostnet_keras.GhostNetV2(width=0.5, include_top=False)
    images = reference_images(imagenette_dir, size=72, n_random=0)[:2]
    for size in (65, 72):
        fixed = ghostnet_keras.GhostNetV2(width=0.5, include_top=False, input_shape=(size, size, 3))
        fixed.set_weights(dynamic.get_weights())
        x = images[:, :size, :size]
        np.testing.assert_allclose(dynamic(x), fixed(x), atol=1e-5)


@pytest.fixture(scope="module")
def parity_images(imagenette_dir):
    """10 Imagenette validation images and 2 of noise, 96x96."""
    return reference_images(imagenette_dir, size=PARITY_SIZE)


def _convert(name, state_dict, model=None):
    model = model or ghostnet_keras.create_model(
        name, input_shape=(PARITY_SIZE, PARITY_SIZE, 3), classifier_activation=None
    )
    state = {k: v.numpy() for k, v in state_dict.items()}
    n = convert_state_dict(state, model, ghostnet_v2v3.MAPPING, name)
    assert n == sum(1 for k in state if not k.endswith("num_batches_tracked"))
    return model


def _logits(model, images):
    return np.asarray(model(images, training=False))  # eager: no tracing of the big graph


@pytest.fixture(scope="module")
def v2():
    """timm's seeded ghostnetv2_100 (random weights and BN statistics), converted."""
    import_torch_timm()
    reference = seeded_timm_model("ghostnetv2_100")
    return reference, _convert("ghostnetv2_100", reference.state_dict())


@pytest.fixture(scope="module")
def v3():
    """timm's seeded ghostnetv3_100 and its deployed form; the Keras training and deployed
    forms converted from the training form."""
    import copy

    _, timm = import_torch_timm()
    reference = seeded_timm_model("ghostnetv3_100")
    reference_deployed = timm.models.reparameterize_model(copy.deepcopy(reference))
    model = _convert("ghostnetv3_100", reference.state_dict())
    return reference, reference_deployed, model, ghostnet_keras.reparameterize(model)


def test_v2_parity_with_timm(v2, parity_images):
    reference, model = v2
    diff = assert_parity(torch_outputs(reference, parity_images), _logits(model, parity_images))
    print(f"MEASURED ghostnetv2_100 {PARITY_SIZE}px parity: max|diff| {diff:.3g}")


def test_v3_parity_with_timm_both_forms(v3, parity_images):
    reference, reference_deployed, model, deployed = v3
    stats = profile(deployed, input_shape=224)  # folding keeps GhostNetV2's MACs
    assert (stats["params"], stats["macs"]) == (DEPLOYED["ghostnetv3_100"], MACS["ghostnetv2_100"])
    got = _logits(model, parity_images)
    got_deployed = _logits(deployed, parity_images)
    diff = assert_parity(torch_outputs(reference, parity_images), got)
    expected_deployed = torch_outputs(reference_deployed, parity_images)
    deployed_diff = assert_parity(expected_deployed, got_deployed)
    fold_diff = assert_parity(got, got_deployed)  # Keras: deployed == training form
    # timm's deployed state dict maps by name onto the Keras deployed form, weight by weight.
    import keras

    from_timm = keras.models.clone_model(deployed)
    _convert("ghostnetv3_100", reference_deployed.state_dict(), model=from_timm)
    assert_parity(expected_deployed, _logits(from_timm, parity_images))
    print(
        f"MEASURED ghostnetv3_100 {PARITY_SIZE}px parity: training {diff:.3g}, deployed "
        f"{deployed_diff:.3g}, Keras deployed vs training {fold_diff:.3g}"
    )


def test_reparameterize_keeps_other_models():
    model = ghostnet_keras.GhostNetV2(width=0.5, input_shape=(64, 64, 3), classes=10)
    assert ghostnet_keras.reparameterize(model) is model


@pytest.mark.parametrize("version", [2, 3])
def test_keras_safe_mode_round_trip(version, tmp_path, parity_images):
    """Width 0.5, 64x64: GhostNetV2, GhostNetV3 and its deployed form save and load in safe
    mode (the custom layers are registered) with identical outputs."""
    import keras

    keras.utils.set_random_seed(0)
    family = ghostnet_keras.GhostNetV2 if version == 2 else ghostnet_keras.GhostNetV3
    models = [family(width=0.5, input_shape=(64, 64, 3), classes=10)]
    if version == 3:
        models.append(ghostnet_keras.reparameterize(models[0]))
        assert _params(models[1]) == DEPLOYED["ghostnetv3_050"] - CLASSIFIER_10
    x = parity_images[:2, :64, :64]
    for i, model in enumerate(models):
        path = tmp_path / f"model{i}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
        np.testing.assert_array_equal(_logits(loaded, x), _logits(model, x))


# TFLite: every op of the DFC gate (the constant-depthwise average pool, LOGISTIC, the
# CONCATENATION/RESHAPE/STRIDED_SLICE upsampling, MUL) runs in XNNPACK, float32 and int8.
# Left to the reference kernels in int8: only the SE gate's MINIMUM and RELU (one each per
# SE block, as C-GhostNet's), which tflite.optimize.export_graph folds into a RELU6.
SE_GATE_OPS = {"MINIMUM": 7, "RELU": 7}


# Two conversions of a 6M-parameter graph each (40-60 s on a busy 2-core machine): a
# GhostNetV3 (DFC gates and folded convs) by default, GhostNetV2 with GHOSTNET_EXHAUSTIVE=1
# (its layers and their connections are converted by the deployed GhostNetV3 and the sweep's
# models: tests/test_tflite_convert.py::test_sweep_covers_every_registry_model). The
# GhostNetV3 goes in in its training form: tflite.convert exports the deployment form by default.
@pytest.mark.parametrize(
    "which", [pytest.param("v2", marks=[pytest.mark.slow, pytest.mark.exhaustive]), "v3"]
)
def test_tflite_float32_and_int8_in_xnnpack(which, request, parity_images, imagenette_dir):
    pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter is needed")
    from tflite import convert, evaluate, latency
    from tflite import flatbuffer as fb

    from conftest import load_image_folder

    if which == "v2":
        model = reference = request.getfixturevalue("v2")[1]
    else:
        _, _, model, reference = request.getfixturevalue("v3")  # training form, deployed
    expected = _logits(reference, parity_images)
    flatbuffer = convert.convert_model(model)
    # The deployed graph: one conv op per Keras conv layer of the deployed form (and a
    # constant depthwise conv per DFC gate's 2x2 average pool).
    ops = fb.op_census(flatbuffer)
    convs = sum(isinstance(layer, keras_conv_types()) for layer in reference.layers)
    pools = sum(isinstance(layer, blocks_v2.AveragePool2x2) for layer in reference.layers)
    assert ops["CONV_2D"] + ops["DEPTHWISE_CONV_2D"] + ops["FULLY_CONNECTED"] == convs + pools
    float_diff = np.abs(evaluate.TFLiteClassifier(flatbuffer).predict(parity_images) - expected)
    assert float_diff.max() <= 1e-4 * max(1.0, np.abs(expected).max())
    assert latency.delegation(flatbuffer)["not_delegated"] == {}

    calibration, _ = load_image_folder(imagenette_dir / "train", 2, size=PARITY_SIZE)
    quantized = convert.convert_model(model, quantize="int8", representative_images=calibration)
    ops = fb.op_names(quantized)
    assert "AVERAGE_POOL_2D" not in ops and "LOGISTIC" in ops
    assert latency.delegation(quantized)["not_delegated"] == SE_GATE_OPS
    got = evaluate.TFLiteClassifier(quantized).predict(parity_images)
    corr = np.corrcoef(got.ravel(), expected.ravel())[0, 1]
    print(
        f"MEASURED {which} {PARITY_SIZE}px: float32 max|diff| {float_diff.max():.3g}, "
        f"int8 correlation {corr:.3f}, float32 ops {sum(fb.op_census(flatbuffer).values())}"
    )
    assert corr > 0.9


def keras_conv_types():
    """The Keras layers a TFLite conv or fully-connected op comes from."""
    import keras

    return (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def test_torch_prefix_names_every_v3_part():
    tp = ghostnet_v2v3.torch_prefix
    assert tp("blocks_3_0_ghost1_short_hconv") == "blocks.3.0.ghost1.short_conv.2"
    assert tp("blocks_3_0_ghost1_short_vbn") == "blocks.3.0.ghost1.short_conv.5"
    assert tp("blocks_3_0_ghost1_primary_rpr_conv_1_bn") == (
        "blocks.3.0.ghost1.primary_rpr_conv.1.bn1"
    )
    assert tp("blocks_3_0_ghost2_cheap_rpr_scale_conv") == "blocks.3.0.ghost2.cheap_rpr_scale.conv"
    assert tp("blocks_3_0_ghost1_cheap_rpr_skip") == "blocks.3.0.ghost1.cheap_rpr_skip"
    assert tp("blocks_3_0_dw_rpr_conv_2_conv") == "blocks.3.0.dw_rpr_conv.2.conv"
    assert tp("blocks_3_0_dw_conv") == "blocks.3.0.conv_dw"  # deployed, as C-GhostNet
    with pytest.raises(KeyError):
        tp("blocks_3_0_ghost1_short_xconv")


def test_official_checkpoint_keys_are_normalized():
    official = {
        "blocks.2.0.ghost1.primary_rpr_conv.0.bn.weight": 1,
        "blocks.3.0.dw_rpr_scale.bn.running_var": 2,
        "blocks.3.0.ghost1.short_conv.1.weight": 3,
        "total_ops": 4,
        "blocks.3.0.total_params": 5,
    }
    assert ghostnet_v2v3.normalize_state_dict(official) == {
        "blocks.2.0.ghost1.primary_rpr_conv.0.bn1.weight": 1,
        "blocks.3.0.dw_rpr_scale.bn1.running_var": 2,
        "blocks.3.0.ghost1.short_conv.1.weight": 3,
    }
    assert converters.for_model("ghostnetv3_100", "x.pth.tar") == [ghostnet_v2v3.MAPPING]
    with pytest.raises(ValueError, match=r"Received: model='ghostnetv4_100'"):
        convert_weights.build_model("ghostnetv4_100")


# weights="imagenet": the official release files, served offline from a file:// origin.
WEIGHTS_SIZE = 64


@pytest.fixture
def serve_release(tmp_path, monkeypatch):
    """Serves bytes as the published file of a model from a ``file://`` origin into a
    temporary Keras cache; returns where the download is cached."""
    from ghostnet_keras import pretrained

    origin, home = tmp_path / "origin", tmp_path / "keras_home"
    origin.mkdir()
    monkeypatch.setenv(pretrained.ORIGIN_ENV, origin.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(home))

    def serve(name, data):
        entry = pretrained.get_entry(name)
        (origin / entry.file_name).write_bytes(data)
        return home / "models" / entry.file_name

    return serve


def _official_release_bytes(reference, tmp_path):
    """A checkpoint as the official GhostNetV2/V3 releases write it: the training script's
    dict with ``state_dict`` (and an EMA copy); V3 with the official key names (``bn``,
    profiler counters)."""
    torch, _ = import_torch_timm()
    state = {}
    for key, value in reference.state_dict().items():
        if "_rpr_" in key and ".bn1." in key:
            key = key.replace(".bn1.", ".bn.")
        state[key] = value
    if any("_rpr_" in key for key in state):
        state["blocks.3.0.total_ops"] = torch.zeros(1, dtype=torch.float64)
    path = tmp_path / "release.pth.tar"
    torch.save({"epoch": 1, "state_dict": state, "state_dict_ema": state}, path)
    return path.read_bytes()


@pytest.mark.parametrize("name", ["ghostnetv2_100", "ghostnetv3_100"])
def test_imagenet_weights_offline(name, serve_release, tmp_path, parity_images, request):
    from ghostnet_keras import pretrained

    entry = pretrained.get_entry(name)
    assert entry.converter == "ghostnet_v2v3" and entry.expected_hashes == []
    assert entry.url.startswith("https://github.com/huawei-noah/Efficient-AI-Backbones/")
    reference = request.getfixturevalue("v2" if name.startswith("ghostnetv2") else "v3")[0]
    data = _official_release_bytes(reference, tmp_path)
    # A truncated copy (no digest is published: the structure check) is deleted.
    cached = serve_release(name, data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ghostnet_keras.create_model(name, weights="imagenet")
    assert not cached.exists() and not os.path.exists(pretrained.converted_path(name))
    serve_release(name, data)
    images = parity_images[:3, :WEIGHTS_SIZE, :WEIGHTS_SIZE]
    model = ghostnet_keras.create_model(
        name,
        weights="imagenet",
        input_shape=(WEIGHTS_SIZE, WEIGHTS_SIZE, 3),
        classifier_activation=None,
    )
    assert os.path.exists(pretrained.converted_path(name))
    diff = assert_parity(torch_outputs(reference, images), _logits(model, images))
    print(f"MEASURED {name} weights='imagenet' (official release form): max|diff| {diff:.3g}")


@pytest.mark.slow
def test_fine_tuning_a_ghostnetv3_from_its_published_weights(
    serve_release, v3, imagenette_dir, tmp_path
):
    """`training.train --weights=imagenet` for GhostNetV3: the published checkpoint (served
    offline) fills the training form, a new head learns the folder's 10 classes on the frozen
    backbone (weights and BatchNorm statistics bit for bit), and the fine-tuned model
    re-parameterises to the deployed form that `tflite.convert` ships."""
    import keras
    from test_finetune import backbone_differences

    from training import loop, recipes

    from conftest import load_image_folder, make_subset

    name = "ghostnetv3_100"
    serve_release(name, _official_release_bytes(v3[0], tmp_path))
    data = make_subset(imagenette_dir, tmp_path / "data", 2)
    config = recipes.make_config(
        dataset=f"folder:{data}",
        model_dir=str(tmp_path / "run"),
        model=name,
        weights="imagenet",
        image_size=40,
        batch_size=4,
        epochs=1,
        head_epochs=1,
        steps_per_epoch=2,
        optimizer="adamw",
        learning_rate=1e-2,
        eval_every=0,
        log_every=1000,
        seed=0,
    )
    assert loop.train(config, printer=lambda line: None)["steps"] == 2
    tuned = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert _all_params(tuned) == EXACT[name] - CLASSIFIER_10  # the training form
    published = ghostnet_keras.create_model(
        name, weights="imagenet", include_top=False, input_shape=(40, 40, 3)
    )
    assert backbone_differences(tuned, published) == []
    # What tflite.convert ships (test_tflite_float32_and_int8_in_xnnpack): the deployed form.
    deployed = ghostnet_keras.reparameterize(tuned)
    assert _all_params(deployed) == DEPLOYED[name] - CLASSIFIER_10
    images = load_image_folder(data / "train", 1, size=40)[0]
    np.testing.assert_allclose(_logits(deployed, images), _logits(tuned, images), atol=1e-5)
