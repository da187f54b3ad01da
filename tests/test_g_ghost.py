"""The G-Ghost stage (paper section 4) and mobile G-GhostNet (Table 2)."""

import functools

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import blocks, g_ghostnet
from ghostnet_keras.profiler import profile

BLOCKS = {
    "basic": blocks.basic_block,
    "bottleneck_se": functools.partial(
        blocks.bottleneck_block, expansion=4, mid_filters=None, se_ratio=0.25
    ),
    "regnetx": functools.partial(blocks.regnetx_block, group_width=8),
    "ghost_bottleneck": lambda x, filters, strides=1, name=None: blocks.ghost_bottleneck(
        x, 2 * filters, filters, strides=strides, se_ratio=0.25, name=name
    ),
}


def _stage_model(block_fn, depth=5, filters=32, strides=2, in_shape=(16, 16, 16), **kw):
    inputs = keras.Input(in_shape)
    out = blocks.g_ghost_stage(inputs, block_fn, depth, filters, strides, name="s", **kw)
    return keras.Model(inputs, out)


def _plain_stage_model(block_fn, depth=5, filters=32, strides=2, in_shape=(16, 16, 16)):
    inputs = keras.Input(in_shape)
    x = inputs
    for i in range(depth):
        x = block_fn(x, filters, strides=strides if i == 0 else 1, name=f"p{i}")
    return keras.Model(inputs, x)


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_ghost_ratio_zero_is_the_plain_stage_and_shapes_agree(kind):
    block_fn = BLOCKS[kind]
    plain = _plain_stage_model(block_fn)
    zero = _stage_model(block_fn, ghost_ratio=0)
    ghost = _stage_model(block_fn, ghost_ratio=0.5)
    assert profile(zero)["params"] == profile(plain)["params"]
    assert profile(zero)["macs"] == profile(plain)["macs"]
    assert ghost.output_shape == plain.output_shape == (None, 8, 8, 32)
    assert profile(ghost)["params"] < profile(plain)["params"]


def test_mix_adds_exactly_the_mix_parameters():
    depth, filters, ratio = 6, 32, 0.5
    raw = int(filters * (1 - ratio))
    cheap = filters - raw
    with_mix = profile(_stage_model(blocks.basic_block, depth, filters, mix=True))
    without = profile(_stage_model(blocks.basic_block, depth, filters, mix=False))
    concat = filters + (depth - 2) * raw  # [x0, every thin output]
    # 1x1 conv + BN (gamma, beta) + 1x1 conv + BN, no biases.
    expected_params = concat * cheap + 2 * cheap + cheap * cheap + 2 * cheap
    assert with_mix["params"] - without["params"] == expected_params
    # Both convs act on the pooled 1x1 map.
    assert with_mix["macs"] - without["macs"] == concat * cheap + cheap * cheap


def test_official_regnet_thin_width_rounding():
    # G-Ghost RegNetX-3.2GF, gw 48 -> thin group width 36: 192 -> 72 raw, 432 -> 216 raw.
    assert blocks.g_ghost_thin_filters(192, 0.5, 36) == 72
    assert blocks.g_ghost_thin_filters(432, 0.5, 36) == 216
    assert blocks.g_ghost_thin_filters(24, 0.4, 4) == 12


def test_eq13_eq14_cost_of_a_g_ghost_stage():
    """Paper Eq. 13-14 for the implemented structure (official code: full first and last blocks).

    Eq. 13 counts f1 + (1 - lambda) f2 + sum (1 - lambda)^2 fi; the official G-Ghost
    RegNet code (and this stage, default) has a full first block, n - 2 thin blocks of
    cost (1 - lambda)^2 fi on the sliced channels and a full last block. With basic blocks
    (two 3x3 convs, identity shortcuts) the thin-block MACs are exactly (1 - lambda)^2 f.
    """
    n, c, lam, hw = 6, 32, 0.5, 8 * 8
    stage = profile(
        _stage_model(blocks.basic_block, n, c, strides=1, in_shape=(8, 8, c), mix=False)
    )
    full = profile(_plain_stage_model(blocks.basic_block, 1, c, strides=1, in_shape=(8, 8, c)))
    raw = int(c * (1 - lam))
    thin = profile(_plain_stage_model(blocks.basic_block, 1, raw, strides=1, in_shape=(8, 8, raw)))
    f, p = full["macs"], full["params"]
    assert thin["macs"] == (1 - lam) ** 2 * f
    f_cheap = (c - raw) ** 2 * hw  # 1x1 conv cheap op
    assert stage["macs"] == f + (n - 2) * (1 - lam) ** 2 * f + f + f_cheap
    r_f = n * f / stage["macs"]
    assert r_f == pytest.approx(n / (2 + (n - 2) * (1 - lam) ** 2 + f_cheap / f), rel=1e-12)
    assert r_f == pytest.approx(1.99, abs=0.005)  # 6 / (2 + 4 / 4 + 1 / 72)
    # Eq. 14: conv weights scale by (1 - lambda)^2, BatchNorm's gamma/beta only by (1 - lambda).
    p_cheap = (c - raw) ** 2 + 2 * (c - raw)
    assert stage["params"] == 2 * p + (n - 2) * thin["params"] + p_cheap
    assert stage["params"] == pytest.approx(
        2 * p + (n - 2) * (1 - lam) ** 2 * p + p_cheap, rel=0.01
    )


@pytest.mark.parametrize("cheap_op", blocks.CHEAP_OPS)
def test_every_cheap_op_builds_and_trains_one_step(cheap_op):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 8))
    x = blocks.g_ghost_stage(
        inputs, blocks.basic_block, 3, 16, 2, cheap_op=cheap_op, mix=cheap_op != "none", name="s"
    )
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    rng = np.random.default_rng(0)
    history = model.fit(
        rng.normal(size=(4, 16, 16, 8)).astype("float32"), rng.integers(0, 3, 4), verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    after = model.trainable_weights
    assert all(np.isfinite(w.numpy()).all() for w in after)
    changed = {w.path for w, b in zip(after, before, strict=True) if not np.allclose(w.numpy(), b)}
    names = {w.path.split("/")[0] for w in after}
    if cheap_op in blocks.CHEAP_CONV_KERNELS:
        assert "s_cheap_conv/kernel" in changed
    if cheap_op == "none":
        assert not any("cheap" in n or "merge" in n for n in names)
    else:
        assert "s_merge_conv1/kernel" in changed
    assert model.output_shape == (None, 3)


def test_stage_validation():
    x = keras.Input((8, 8, 16))
    with pytest.raises(ValueError, match="Received: ghost_ratio=1"):
        blocks.g_ghost_stage(x, blocks.basic_block, 4, 16, 1, ghost_ratio=1, name="a")
    with pytest.raises(ValueError, match="Received: depth=2"):
        blocks.g_ghost_stage(x, blocks.basic_block, 2, 16, 1, name="b")
    with pytest.raises(ValueError, match="Received: cheap_op='conv7x7'"):
        blocks.g_ghost_stage(x, blocks.basic_block, 4, 16, 1, cheap_op="conv7x7", name="c")
    with pytest.raises(ValueError, match="Received: mix=True"):
        blocks.g_ghost_stage(x, blocks.basic_block, 4, 16, 1, cheap_op="none", name="d")
    with pytest.raises(ValueError, match="Received: ghost_ratio=0.99"):
        blocks.g_ghost_stage(x, blocks.basic_block, 4, 16, 1, ghost_ratio=0.99, name="e")


# --- Mobile G-GhostNet (paper Table 2) --------------------------------------------------

# Our own numbers (no paper or reference number exists for G-GhostNet's size): regression
# values of the documented design, at 224x224.
GGHOSTNET_SIZES = {
    "g_ghostnet_050": (4_070_576, 246_761_440),
    "g_ghostnet_100": (11_182_440, 998_024_736),
    "g_ghostnet_130": (17_283_912, 1_657_713_632),
}


@pytest.mark.parametrize("name", sorted(GGHOSTNET_SIZES))
def test_g_ghostnet_sizes(name):
    stats = profile(ghostnet_keras.create_model(name))
    assert (stats["params"], stats["macs"]) == GGHOSTNET_SIZES[name]


def test_g_ghostnet_follows_table2():
    model = ghostnet_keras.GGhostNet100()
    # Stage outputs: Table 2's #out and output sizes 56/28/14/7.
    for k, (size, out) in enumerate(((56, 24), (28, 40), (14, 80), (7, 160)), start=1):
        assert model.get_layer(f"stage{k}_concat").output.shape[1:] == (size, size, out)
    # "Block x n  Cheap": 1/1/5/5 thin blocks, thin width int(0.6 c / 4) * 4.
    names = [layer.name for layer in model.layers]
    for k, (n, raw) in enumerate(((1, 12), (1, 24), (5, 48), (5, 96)), start=1):
        thin = {m.split("_")[2] for m in names if m.startswith(f"stage{k}_layers_")}
        assert len(thin) == n
        assert model.get_layer(f"stage{k}_raw_slice").output.shape[-1] == raw
        assert f"stage{k}_merge_conv1" in names and f"stage{k}_cheap_conv" in names
        assert not any(m.startswith(f"stage{k}_end") for m in names)  # Table 2: no last block
    # SE on every block (first + thin), expansion 3, dense 3x3 (no depthwise conv), ReLU only.
    assert sum(m.endswith("_se_reduce") for m in names) == 4 + 12
    assert model.get_layer("stage3_base_conv2").filters == 3 * 80
    assert model.get_layer("stage3_layers_0_conv2").filters == 3 * 48
    assert not any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    # C-GhostNet's stem and head.
    assert model.get_layer("stem_conv").filters == 16
    assert model.get_layer("last_conv").filters == 960
    assert model.get_layer("head").units == 1280


def test_g_ghostnet_arguments():
    model = ghostnet_keras.GGhostNet(0.5, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert model.output_shape == (None, 480)
    assert g_ghostnet.GHOST_RATIO == 0.4 and g_ghostnet.EXPANSION == 3
    with pytest.raises(ValueError, match="Received: width=0"):
        ghostnet_keras.GGhostNet(0)
    with pytest.raises(ValueError, match="No ImageNet weights.*Received: weights='imagenet'"):
        ghostnet_keras.GGhostNet100(weights="imagenet")
    with pytest.raises(ValueError, match="Received: input_shape"):
        ghostnet_keras.GGhostNet050(input_shape=(16, 16, 3))
