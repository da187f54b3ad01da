"""GhostNetV2 and GhostNetV3: exact sizes, timm parity (both V3 forms), re-parameterisation,
the DFC gate's upsampling, `.keras` round trips, TFLite float32/int8 all in XNNPACK."""

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
from ghostnet_keras import blocks_v2, convert_v2v3, profile

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


def _params(model):
    """Trainable parameters: what timm counts (BN statistics are buffers there)."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_params(name):
    model = ghostnet_keras.create_model(name, input_shape=(64, 64, 3))
    assert _params(model) == EXACT[name]
    if name in DEPLOYED:
        assert _params(ghostnet_keras.reparameterize(model)) == DEPLOYED[name]


@pytest.mark.parametrize("name", sorted(MACS))
def test_macs(name):
    assert profile(ghostnet_keras.create_model(name), input_shape=224)["macs"] == MACS[name]
    if name == "ghostnetv2_100":
        deployed = ghostnet_keras.reparameterize(ghostnet_keras.GhostNet100V3())
        stats = profile(deployed, input_shape=224)
        assert (stats["params"], stats["macs"]) == (DEPLOYED["ghostnetv3_100"], MACS[name])


def test_builders_registry_and_names():
    assert ghostnet_keras.list_models("ghostnetv*") == sorted(EXACT)
    for builder, name in [
        (ghostnet_keras.GhostNet100V2, "ghostnetv2_100"),
        (ghostnet_keras.GhostNet050V3, "ghostnetv3_050"),
    ]:
        model = builder(input_shape=(64, 64, 3), classes=10)
        assert model.name == name and model.output_shape == (None, 10)
    model = ghostnet_keras.GhostNetV2(width=1.0, include_top=False, pooling="avg")
    assert model.output_shape == (None, 960)
    # The first two bottlenecks keep the plain Ghost module, the third has DFC attention.
    names = {layer.name for layer in model.layers}
    assert "blocks_1_0_ghost1_short_conv" not in names
    assert "blocks_2_0_ghost1_short_conv" in names
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
    return reference_images(imagenette_dir, size=PARITY_SIZE)


def _converted(name, state_dict, model=None):
    model = model or ghostnet_keras.create_model(
        name, input_shape=(PARITY_SIZE, PARITY_SIZE, 3), classifier_activation=None
    )
    state = {k: v.numpy() for k, v in state_dict.items()}
    n = convert_v2v3.convert_state_dict(state, model, name)
    assert n == sum(1 for k in state if not k.endswith("num_batches_tracked"))
    return model


def test_v2_parity_with_timm(parity_images):
    import_torch_timm()
    reference = seeded_timm_model("ghostnetv2_100")
    model = _converted("ghostnetv2_100", reference.state_dict())
    expected = torch_outputs(reference, parity_images)
    diff = assert_parity(expected, model.predict(parity_images, verbose=0))
    print(f"MEASURED ghostnetv2_100 {PARITY_SIZE}px parity: max|diff| {diff:.3g}")


def test_v3_parity_with_timm_both_forms(parity_images):
    import copy

    torch, timm = import_torch_timm()
    reference = seeded_timm_model("ghostnetv3_100")
    model = _converted("ghostnetv3_100", reference.state_dict())
    expected = torch_outputs(reference, parity_images)
    got = model.predict(parity_images, verbose=0)
    diff = assert_parity(expected, got)

    reference_deployed = timm.models.reparameterize_model(copy.deepcopy(reference))
    deployed = ghostnet_keras.reparameterize(model)
    expected_deployed = torch_outputs(reference_deployed, parity_images)
    deployed_diff = assert_parity(expected_deployed, deployed.predict(parity_images, verbose=0))
    # Deployed == training form in Keras, and timm's deployed weights load into it by name.
    fold_diff = assert_parity(got, deployed.predict(parity_images, verbose=0))
    from_timm = _converted(
        "ghostnetv3_100",
        reference_deployed.state_dict(),
        model=ghostnet_keras.reparameterize(
            ghostnet_keras.create_model(
                "ghostnetv3_100",
                input_shape=(PARITY_SIZE, PARITY_SIZE, 3),
                classifier_activation=None,
            )
        ),
    )
    assert_parity(expected_deployed, from_timm.predict(parity_images, verbose=0))
    print(
        f"MEASURED ghostnetv3_100 {PARITY_SIZE}px parity: training {diff:.3g}, deployed "
        f"{deployed_diff:.3g}, Keras deployed vs training {fold_diff:.3g}"
    )


def test_torch_prefix_names_every_v3_part():
    tp = convert_v2v3.torch_prefix
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
