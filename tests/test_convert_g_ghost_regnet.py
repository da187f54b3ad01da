"""Converting the official G-Ghost RegNetX checkpoints (huawei-noah/Efficient-AI-Backbones).

The fixture in ../shared/reference/g_ghost_regnetx_032 holds the official model's state-dict
spec, a script that fills it with seeded weights (random BatchNorm statistics) and the
official model's logits for 8 real images. The other sizes share the code path: their key
and shape sets, derived below from the official model definition, must be exactly what the
converter expects of the Keras models.
"""

import importlib.util
import json

import keras
import numpy as np
import pytest
from torch_reference import import_torch_timm

import ghostnet_keras
from ghostnet_keras import convert_weights, converters
from ghostnet_keras.converters import core

from conftest import SHARED

FIXTURE = SHARED / "reference" / "g_ghost_regnetx_032"
TOLERANCE = 1e-4

# The official g_ghost_regnetx_* functions: stage depths, widths and group width.
OFFICIAL_CONFIGS = {
    "g_ghost_regnetx_032": ((2, 6, 15, 2), (96, 192, 432, 1008), 48),
    "g_ghost_regnetx_040": ((2, 5, 14, 2), (80, 240, 560, 1360), 40),
    "g_ghost_regnetx_080": ((2, 5, 15, 1), (80, 240, 720, 1920), 120),
    "g_ghost_regnetx_160": ((2, 6, 13, 1), (256, 512, 896, 2048), 128),
}


def official_state_dict_spec(depths, widths, group_width, classes=1000):
    """``[(key, shape)]`` of the official GGhostRegNet's state dict, in module order.

    Facts of the official code: a 3x3 stem to 32 channels (``conv1``/``bn1``); RegNetX
    bottlenecks (``conv1`` 1x1, ``conv2`` 3x3 with groups ``width // min(width, gw)``,
    ``conv3`` 1x1, each with ``bn<n>``, ``downsample`` = 1x1 conv + BN in the first block
    of a stage); stage 1 plain, stage 3 always a G-Ghost ``Stage``, stages 2 and 4 one when
    deeper than 2 blocks. A Stage registers ``base``, ``end``, ``merge`` (pool, conv, BN,
    ReLU, conv, BN), ``cheap`` (conv, BN) and ``layers``: ``depth - 2`` thin blocks of group
    width ``int(0.75 gw)`` and width ``int(w * 0.5 / gw') * gw'``, the first without a
    downsample module (its shortcut is a channel slice).
    """
    spec = []

    def conv(name, out, cin, k):
        spec.append((f"{name}.weight", (out, cin, k, k)))

    def bn(name, c):
        spec.extend(
            (f"{name}.{p}", (c,)) for p in ("weight", "bias", "running_mean", "running_var")
        )
        spec.append((f"{name}.num_batches_tracked", ()))

    def block(prefix, cin, width, gw, downsample):
        groups = width // min(width, gw)
        conv(f"{prefix}.conv1", width, cin, 1)
        bn(f"{prefix}.bn1", width)
        conv(f"{prefix}.conv2", width, width // groups, 3)
        bn(f"{prefix}.bn2", width)
        conv(f"{prefix}.conv3", width, width, 1)
        bn(f"{prefix}.bn3", width)
        if downsample:
            conv(f"{prefix}.downsample.0", width, cin, 1)
            bn(f"{prefix}.downsample.1", width)

    conv("conv1", 32, 3, 3)
    bn("bn1", 32)
    cin = 32
    for k, (depth, width) in enumerate(zip(depths, widths, strict=True), start=1):
        if k == 1 or (k in (2, 4) and depth <= 2):
            for i in range(depth):
                block(f"layer{k}.{i}", cin if i == 0 else width, width, group_width, i == 0)
        else:
            thin_gw = int(group_width * 0.75)
            raw = int(width * 0.5 / thin_gw) * thin_gw
            cheap = width - raw
            block(f"layer{k}.base", cin, width, group_width, True)
            block(f"layer{k}.end", width, width, group_width, False)
            conv(f"layer{k}.merge.1", cheap, width + raw * (depth - 2), 1)
            bn(f"layer{k}.merge.2", cheap)
            conv(f"layer{k}.merge.4", cheap, cheap, 1)
            bn(f"layer{k}.merge.5", cheap)
            conv(f"layer{k}.cheap.0", cheap, cheap, 1)
            bn(f"layer{k}.cheap.1", cheap)
            for i in range(depth - 2):
                block(f"layer{k}.layers.{i}", raw, raw, thin_gw, False)
        cin = width
    spec.append(("fc.weight", (classes, widths[-1])))
    spec.append(("fc.bias", (classes,)))
    return spec


@pytest.fixture(scope="module")
def fixture_spec():
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} is missing: the reference outputs live in ../shared/reference")
    return [(k, tuple(s)) for k, s in json.loads((FIXTURE / "state_dict_spec.json").read_text())]


def official_checkpoint_state(as_numpy=False):
    """The fixture's seeded weights (a state dict of torch tensors, or numpy arrays)."""
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} is missing: the reference outputs live in ../shared/reference")
    spec = importlib.util.spec_from_file_location("make_state_dict", FIXTURE / "make_state_dict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.make_state_dict(json.loads((FIXTURE / "state_dict_spec.json").read_text()))
    if as_numpy:
        return state
    torch, _ = import_torch_timm()
    return {k: torch.from_numpy(v) for k, v in state.items()}


@pytest.fixture(scope="module")
def official_checkpoint(fixture_spec, tmp_path_factory):
    """The fixture's seeded weights, written as the official release writes them."""
    torch, _ = import_torch_timm()
    state = official_checkpoint_state(as_numpy=True)
    path = tmp_path_factory.mktemp("g_ghost") / "g_ghost_regnet_3.2g_77.8.pth"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    return path, state


def test_official_spec_derivation_matches_the_fixture(fixture_spec):
    assert official_state_dict_spec(*OFFICIAL_CONFIGS["g_ghost_regnetx_032"]) == fixture_spec
    params = sum(int(np.prod(s)) for k, s in fixture_spec if "running" not in k and s)
    assert params == 10_511_000  # the README's trainable parameter count


def test_official_logits_reproduced(official_checkpoint, tmp_path):
    path, _ = official_checkpoint
    reference = np.load(FIXTURE / "reference.npz")
    output = tmp_path / "g_ghost_regnetx_032.weights.h5"
    converted = convert_weights.convert_checkpoint(path, "g_ghost_regnetx_032", output)
    assert len(convert_weights.weight_plan(converted, converters.get("g_ghost_regnet"))) == 432
    assert output.exists()
    logits_model = keras.Model(converted.inputs, converted.get_layer("classifier").output)
    logits = logits_model(reference["images"].astype("float32"), training=False).numpy()
    diff = np.abs(logits - reference["logits"]).max()
    print(f"g_ghost_regnetx_032: max |logit difference| {diff:.2e}")
    assert diff <= TOLERANCE
    np.testing.assert_array_equal(logits.argmax(1), reference["logits"].argmax(1))


@pytest.mark.parametrize(
    "name", ["g_ghost_regnetx_040", "g_ghost_regnetx_080", "g_ghost_regnetx_160"]
)
def test_other_sizes_expect_the_official_keys_and_shapes(name):
    spec = official_state_dict_spec(*OFFICIAL_CONFIGS[name])
    official = {k: s for k, s in spec if not k.endswith("num_batches_tracked")}
    model = ghostnet_keras.create_model(name, input_shape=(64, 64, 3))
    expected = core.expected_tensors(model, converters.get("g_ghost_regnet"))
    assert expected == official
    backbone = core.expected_tensors(model, converters.get("g_ghost_regnet"), include_top=False)
    assert set(official) - set(backbone) == {"fc.weight", "fc.bias"}


def test_wrapped_checkpoint_and_other_size(official_checkpoint, tmp_path):
    torch, _ = import_torch_timm()
    _, state = official_checkpoint
    wrapped = {
        "epoch": 299,
        "best_acc1": 77.8,
        "state_dict": {f"module.{k}": torch.from_numpy(v) for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": []},
    }
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(wrapped, path)
    tensors = convert_weights.read_state_dict(path)
    assert sorted(tensors) == sorted(state)

    with pytest.raises(ValueError) as info:
        convert_weights.convert_checkpoint(path, "g_ghost_regnetx_040", tmp_path / "x.weights.h5")
    message = str(info.value)
    assert "does not match g_ghost_regnetx_040" in message
    assert "bn1" not in message.splitlines()[1]  # the stem matches; the first stage does not
    first = "layer1.0.conv1.weight: checkpoint (96, 32, 1, 1), g_ghost_regnetx_040 expects"
    assert f"{first} (80, 32, 1, 1)" in message
    assert "looks like g_ghost_regnetx_032: pass --model=g_ghost_regnetx_032" in message
    assert not (tmp_path / "x.weights.h5").exists()


def test_plain_regnet_checkpoint_is_not_taken_for_g_ghost(tmp_path):
    torch, _ = import_torch_timm()
    state = {
        "stem.0.weight": torch.zeros(32, 3, 3, 3),
        "trunk_output.block1.block1-0.f.c.0.weight": torch.zeros(96, 96, 1, 1),
        "trunk_output.block4.block4-1.f.c.0.weight": torch.zeros(1008, 1008, 1, 1),
        "fc.weight": torch.zeros(1000, 1008),
    }
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as info:
        convert_weights.convert_checkpoint(path, "g_ghost_regnetx_032", tmp_path / "x.weights.h5")
    assert str(info.value).splitlines()[-1] == (
        "It does not look like a checkpoint of the official G-Ghost RegNet code "
        "(huawei-noah/Efficient-AI-Backbones) (g_ghost_regnetx_032, g_ghost_regnetx_040, "
        "g_ghost_regnetx_080, g_ghost_regnetx_160); it looks like regnetx_032 of "
        "torchvision's RegNetX: pass --model=regnetx_032."
    )
