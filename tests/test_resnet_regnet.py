"""ResNet / Ghost-ResNet / G-Ghost-ResNet and RegNetX / G-Ghost-RegNetX: sizes and arguments."""

import importlib.util
import inspect
import json
import subprocess
import sys

import pytest

import ghostnet_keras
from ghostnet_keras import pretrained, regnet, resnet, skeleton
from ghostnet_keras.profiler import profile

# The official G-Ghost RegNet code (Huawei Efficient-AI-Backbones, g_ghost_regnet.py) gives
# these exact trainable parameter counts at 1000 classes; MACs, activations at 224x224 and
# the paper's Table 18 (params 10.5/15.7/24.6/32.4M, FLOPs 1.8/2.2/4.2/9.0B, acts
# 8.7/9.5/10.4/19.5M).
G_GHOST_REGNETX = {
    "g_ghost_regnetx_032": (10_511_000, 1.802, 8.7),
    "g_ghost_regnetx_040": (15_726_268, 2.228, 9.5),
    "g_ghost_regnetx_080": (24_586_928, 4.150, 10.4),
    "g_ghost_regnetx_160": (32_381_704, 8.997, 19.5),
}
# Plain RegNetX: torchvision's regnet_x_3_2gf/_8gf/_16gf counts (checked against torchvision
# below); 4.0GF has no torchvision model (pycls: 22.1M). Paper Table 18 params / FLOPs /
# acts: 15.3M/3.2B/11.4M, 22.1M/4.0B/12.2M, 39.6M/8.0B/14.1M, 54.3M/15.9B/25.5M.
REGNETX = {
    "regnetx_032": (15_296_552, 3.2, 11.4),
    "regnetx_040": (22_118_248, 4.0, 12.2),
    "regnetx_080": (39_572_648, 8.0, 14.1),
    "regnetx_160": (54_278_536, 15.9, 25.5),
}


@pytest.mark.parametrize("name", sorted(G_GHOST_REGNETX))
def test_g_ghost_regnetx_exact(name):
    params, gmacs, acts = G_GHOST_REGNETX[name]
    stats = profile(ghostnet_keras.create_model(name))
    assert stats["params"] == params
    assert round(stats["macs"] / 1e9, 3) == gmacs
    assert round(stats["activations"] / 1e6, 1) == acts


@pytest.mark.parametrize("name", sorted(REGNETX))
def test_regnetx_sizes(name):
    params, gmacs, acts = REGNETX[name]
    stats = profile(ghostnet_keras.create_model(name))
    assert stats["params"] == params
    assert stats["macs"] / 1e9 == pytest.approx(gmacs, rel=0.01)
    assert round(stats["activations"] / 1e6, 1) == acts


def test_g_ghost_regnet_layout_follows_the_official_code():
    model = ghostnet_keras.GGhostRegNetX032()
    names = {layer.name for layer in model.layers}
    # Stage 1 (2 blocks) and stage 4 (2 blocks) plain; stages 2 and 3 G-Ghost.
    assert {"layer1_0_conv1", "layer1_1_conv1", "layer4_0_conv1", "layer4_1_conv1"} <= names
    assert {"layer2_base_conv1", "layer2_end_conv1", "layer3_merge_conv1"} <= names
    # Thin group width int(0.75 * 48) = 36: raw 72 of 192 (2 groups), 216 of 432 (6 groups).
    assert model.get_layer("layer2_raw_slice").output.shape[-1] == 72
    assert model.get_layer("layer2_layers_0_conv2").groups == 2
    assert model.get_layer("layer3_layers_0_conv2").groups == 6
    assert model.get_layer("layer3_base_conv2").groups == 9  # 432 / 48
    assert len({n.split("_")[2] for n in names if n.startswith("layer3_layers_")}) == 13


TORCHVISION_COUNT = """
import json, torchvision.models as m
names = {"regnetx_032": m.regnet_x_3_2gf, "regnetx_080": m.regnet_x_8gf,
         "regnetx_160": m.regnet_x_16gf, "resnet34": m.resnet34, "resnet50": m.resnet50}
print(json.dumps({k: sum(p.numel() for p in f().parameters()) for k, f in names.items()}))
"""


@pytest.mark.slow
def test_plain_models_match_torchvision():
    # torch and TensorFlow do not share a process well: count in a subprocess.
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("cross-check against torchvision needs torchvision")
    result = subprocess.run(
        [sys.executable, "-c", TORCHVISION_COUNT], capture_output=True, text=True, check=True
    )
    expected = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(expected) == 5
    for name, count in expected.items():
        assert profile(ghostnet_keras.create_model(name))["params"] == count, name


# (paper params in M, paper FLOPs in M, tolerance) -- paper Tables 7, 11, 15 and section
# 5.2.2; within 3% unless the comment gives the documented reason (resnet.py docstring).
RESNETS = {
    "resnet34": (21.8, 3700, 0.03),  # Table 15: 21.8M / 3.7B -> 21.80M / 3.66G
    "g_ghost_resnet34": (14.6, 2300, 0.03),  # Table 15: 14.6M / 2.3B -> 14.71M / 2.29G
    "resnet50": (25.6, 4100, 0.03),  # Table 7: 25.6M / 4.1B -> 25.56M / 4.09G
    "ghost_resnet50_s2": (13.0, 2200, 0.03),  # Table 7: 13.0M / 2.2B -> 12.94M / 2.150G
    "ghost_resnet50_s4": (6.5, 1200, 0.03),  # Table 7: 6.5M / 1.2B -> 6.62M / 1.180G
    "resnet56": (0.85, 125.0, 0.03),  # Table 11: 0.85M / 125M -> 0.856M / 125.7M
    # Table 6: 0.43M / 63M -> 0.440M / 65.5M (+3.9%): the paper's 63M is half of ResNet56
    # without the 2.3M MACs of the 3x3 depthwise cheap ops, which Eq. 4 itself counts.
    "ghost_resnet56": (0.43, 63.0, 0.04),
    "g_ghost_resnet56": (0.37, 53.8, 0.03),  # Table 11: 0.37M / 53.8M -> 0.378M / 54.0M
    "g_ghost_resnet56_nomix": (0.36, 53.7, 0.03),  # Table 11: 0.36M / 53.7M -> 0.364M / 54.0M
}


@pytest.mark.parametrize("name", sorted(RESNETS))
def test_resnet_sizes_against_the_paper(name):
    params, mflops, tol = RESNETS[name]
    model = ghostnet_keras.create_model(name)
    stats = profile(model, 32 if name.endswith(("56", "nomix")) else 224)
    assert stats["params"] / 1e6 == pytest.approx(params, rel=tol)
    assert stats["macs"] / 1e6 == pytest.approx(mflops, rel=tol)


def test_cifar_variants_take_their_ablations_as_overrides():
    """The CIFAR ResNet56 variants keep their kind's family arguments open, after the
    keras.applications ones, defaulting to their fixed values; an override builds the same
    model as the family with those arguments (exact sizes of every paper row:
    tests/test_reproduce_cifar.py)."""
    application = [name for name, _ in skeleton.APPLICATION_ARGS]
    for builder, open_args in (
        (ghostnet_keras.ResNet56, {"width": 1.0}),
        (ghostnet_keras.GhostResNet56, {"conv_ratio": 2, "width": 1.0}),
        (ghostnet_keras.GGhostResNet56, {"ghost_ratio": 0.5, "cheap_op": "conv1x1", "width": 1.0}),
    ):
        parameters = inspect.signature(builder).parameters
        assert list(parameters) == [*application, *open_args, "name"], builder.__name__
        assert {k: parameters[k].default for k in open_args} == open_args
        assert all(f"    {arg}: " in builder.__doc__ for arg in open_args)
    override = ghostnet_keras.create_model("g_ghost_resnet56_nomix", cheap_op="identity")
    family = resnet.resnet(
        "resnet56", ghost_ratio=0.5, cheap_op="identity", mix=False, full_input=True
    )
    assert _layout(override) == _layout(family)
    assert (override.name, family.name) == ("g_ghost_resnet56_nomix", "resnet56")


def _layout(model):
    return [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def test_resnet56_width_rounds_to_even_widths():
    # Table 11's ResNet56-0.7x: 16/32/64 x 0.7 -> 12/22/44 (stem 12); sizes in
    # tests/test_reproduce_cifar.py (0.410M / 63.4M against 0.41M / 63.3M).
    model = ghostnet_keras.ResNet56(width=0.7)
    widths = [model.get_layer(n).filters for n in ("conv1", *(f"layer{k}_0_conv1" for k in "123"))]
    assert widths == [12, 12, 22, 44]
    assert model.name == "resnet56"
    tiny = resnet.resnet(("basic", (1, 1, 1), (16, 32, 64), "cifar"), width=0.7)
    assert tiny.name == "resnet_custom_070"  # the family names its width


def test_bad_overrides_are_one_value_error():
    with pytest.raises(ValueError, match="'resnet56' takes no argument 'cheap_op'.*width"):
        ghostnet_keras.create_model("resnet56", cheap_op="identity")
    with pytest.raises(ValueError, match="Received: width=0"):
        ghostnet_keras.create_model("resnet56", width=0)
    with pytest.raises(ValueError, match="Received: cheap_op='conv7x7'"):
        ghostnet_keras.create_model("g_ghost_resnet56_nomix", cheap_op="conv7x7")
    with pytest.raises(ValueError, match="No ImageNet weights.*resnet56"):
        ghostnet_keras.create_model("resnet56", width=0.7, weights="imagenet")
    # A variant with published weights refuses them for an override away from its value.
    signature = inspect.signature(lambda weights=None, width=1.0: None)
    arguments = {"weights": "imagenet", "width": 0.8}
    with pytest.raises(
        ValueError, match="weights of resnet34 are for width=1.0.*Received: width=0.8"
    ):
        skeleton._check_overrides("resnet34", signature, ("width",), arguments)
    skeleton._check_overrides("resnet34", signature, ("width",), arguments | {"width": 1.0})
    with pytest.raises(TypeError, match=r"takes no arguments \['weights'\]"):
        skeleton.variant(resnet.resnet, "resnet56_x", "X", "", overrides=("weights",))


def test_g_ghost_resnet34_without_mix_table15():
    stats = profile(resnet.resnet("resnet34", ghost_ratio=0.5, mix=False))
    assert stats["params"] / 1e6 == pytest.approx(14.3, rel=0.03)  # Table 15: 14.3M / 2.3B
    assert stats["macs"] / 1e9 == pytest.approx(2.3, rel=0.03)


def test_ghost_resnet50_every_conv_is_a_ghost_module():
    model = ghostnet_keras.GhostResNet50S2(input_shape=(64, 64, 3))
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]
    # The stem stays plain (documented); every other conv is a C-Ghost primary conv.
    assert [c for c in convs if not c.endswith("_primary_conv")] == ["conv1"]
    # 16 blocks x 3 convs + 4 projections + classifier.
    assert len(convs) - 1 == 16 * 3 + 4 + 1
    assert model.get_layer("layer1_0_conv1_primary_conv").filters == 32  # 64 / s
    assert model.get_layer("layer2_0_conv2_primary_conv").strides == (2, 2)  # v1.5


def test_cifar_models_defaults_and_arguments():
    model = ghostnet_keras.GGhostResNet56()
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 10)
    features = ghostnet_keras.ResNet56(include_top=False, pooling="avg")
    assert features.output_shape == (None, 64)
    with pytest.raises(ValueError, match="at least 32x32"):
        ghostnet_keras.GhostResNet56(input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="Received: pooling='sum'"):
        ghostnet_keras.ResNet56(include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="Received: config='resnet18'"):
        resnet.resnet("resnet18")
    with pytest.raises(ValueError, match="Received: config='999'"):
        regnet.regnetx("999")


NEW_MODELS = [
    "g_ghost_regnetx_032",
    "g_ghost_regnetx_040",
    "g_ghost_regnetx_080",
    "g_ghost_regnetx_160",
    "regnetx_032",
    "regnetx_040",
    "regnetx_080",
    "regnetx_160",
    "resnet34",
    "g_ghost_resnet34",
    "resnet50",
    "ghost_resnet50_s2",
    "ghost_resnet50_s4",
    "resnet56",
    "ghost_resnet56",
    "g_ghost_resnet56",
    "g_ghost_resnet56_nomix",
    "g_ghostnet_050",
    "g_ghostnet_100",
    "g_ghostnet_130",
]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_registered_and_no_imagenet_weights(name):
    assert name in ghostnet_keras.list_models()
    if pretrained.get_entry(name) is None:  # the others: tests/test_pretrained.py
        with pytest.raises(ValueError, match=f"No ImageNet weights.*{name}.*Received: weights="):
            ghostnet_keras.create_model(name, weights="imagenet")
    with pytest.raises(ValueError, match="Received: weights='missing.weights.h5'"):
        ghostnet_keras.create_model(name, weights="missing.weights.h5")
