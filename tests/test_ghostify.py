"""ghostify(): plug-and-play C-Ghost modules in existing Keras models."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import ghostnet_keras
from ghostnet_keras import blocks
from ghostnet_keras.ghostifier import GhostifyReport, ghost_conv


def _params(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def _randomize_bn(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.weights])


@pytest.fixture(scope="module")
def resnet50_pair():
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    # Non-default statistics, so that "weights were copied" cannot pass by accident.
    _randomize_bn(model.get_layer("conv1_bn"), 1)
    ghost, report = ghostnet_keras.ghostify(model, return_report=True)
    return model, ghost, report


def test_resnet50_params_about_halve(resnet50_pair):
    model, ghost, report = resnet50_pair
    # All 53 convs convert (none grouped, depthwise or one-channel).
    assert len(report.converted) == 53
    assert report.skipped == {} and report.unconvertible == {}
    assert report.params_before == _params(model) == 25_583_592
    assert report.params_after == _params(ghost) == 14_002_216
    # s=2 halves the conv weights (23.5M of the 25.6M), adds depthwise 3x3 and BN
    # weights (<1%), and leaves the 2.05M dense classifier as it is: 0.547x. The paper's
    # Ghost-ResNet50 (s=2, Table 7) is 13.0M / 25.6M = 0.51x.
    assert 0.50 < report.params_after / report.params_before < 0.60


def test_resnet50_shapes_and_structure(resnet50_pair):
    model, ghost, report = resnet50_pair
    assert ghost.output_shape == model.output_shape
    assert ghost.name == model.name
    for name in ("conv1_conv", "conv2_block1_1_conv", "conv3_block1_1_conv"):
        primary = ghost.get_layer(f"{name}_primary_conv")
        original = model.get_layer(name)
        assert primary.kernel_size == original.kernel_size
        assert primary.strides == original.strides
        assert primary.padding == original.padding
        assert primary.filters == original.filters // 2
        assert not primary.use_bias  # the BN betas of the module take the bias' place
        assert ghost.get_layer(report.converted[name]).output.shape == original.output.shape
    with pytest.raises(ValueError):
        ghost.get_layer("conv1_conv")


def test_resnet50_untouched_weights_copied(resnet50_pair):
    model, ghost, _ = resnet50_pair
    for name in ("conv1_bn", "predictions", "conv5_block3_3_bn"):
        _assert_same_weights(model.get_layer(name), ghost.get_layer(name))
    # A copy, not the same variables.
    assert ghost.get_layer("predictions") is not model.get_layer("predictions")


def _train_step(model, x, y):
    """One eager SGD step (tracing a tf.function for ResNet50 costs minutes on 2 cores)."""
    optimizer = keras.optimizers.SGD(0.01)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        )
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer.apply(grads, model.trainable_weights)
    return float(loss)


def test_resnet50_save_load_safe_mode(resnet50_pair, tmp_path):
    _, ghost, _ = resnet50_pair
    path = tmp_path / "ghost_resnet50.keras"
    ghost.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(ghost(x, training=False)),
        keras.ops.convert_to_numpy(loaded(x, training=False)),
    )


def test_resnet50_trains_one_step(resnet50_pair):
    _, ghost, _ = resnet50_pair
    saved = ghost.get_weights()
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    try:
        before = ghost.get_layer("conv1_conv_cheap_conv").get_weights()[0].copy()
        assert np.isfinite(_train_step(ghost, x, np.array([3, 7])))
        after = ghost.get_layer("conv1_conv_cheap_conv").get_weights()[0]
        assert not np.allclose(before, after)
    finally:
        ghost.set_weights(saved)  # the other tests compare with the original weights


class _MyConv(layers.Conv2D):
    pass


class _Block(layers.Layer):
    """A custom layer that owns a conv: opaque to ghostify."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(4, 1, name="inner")

    def call(self, x):
        return self.conv(x)


def _zoo():
    """One of each kind of convolution that ghostify meets."""
    inputs = keras.Input((16, 16, 4), name="image")
    gray = layers.Conv2D(1, 1, name="to_gray")(inputs)  # one filter
    x = layers.Conv2D(8, 3, activation="relu", name="plain")(inputs)  # bias + fused ReLU
    x = layers.Conv2D(8, 3, padding="same", groups=2, name="grouped")(x)
    x = layers.Conv2D(6, 3, padding="same", dilation_rate=2, name="dilated")(x)  # 6 = 2*3
    x = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = layers.SeparableConv2D(8, 3, padding="same", name="separable")(x)
    x = layers.Conv2D(5, 3, strides=2, padding="same", activation="swish", name="swish")(x)
    shared = layers.Conv2D(5, 1, name="shared")
    x = layers.Add(name="add")([shared(x), shared(x)])
    x = _MyConv(4, 1, name="subclass")(x)
    x = _Block(name="block")(x)
    g = layers.Conv2D(4, 3, strides=2, name="from_gray")(gray)  # one input channel
    x = layers.Concatenate(name="cat")([x, g])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, name="fc")(x), name="zoo")


def test_report_lists_every_conv():
    model = _zoo()
    ghost, report = ghostnet_keras.ghostify(model, return_report=True)
    assert isinstance(report, GhostifyReport)
    assert report.converted == {
        "plain": "plain_concat",
        "dilated": "dilated_concat",
        "swish": "swish_activation",
    }
    assert sorted(report.skipped) == ["depthwise", "from_gray", "separable", "to_gray"]
    assert "one input channel" in report.skipped["from_gray"]
    assert "one output filter" in report.skipped["to_gray"]
    assert sorted(report.unconvertible) == ["block", "grouped", "shared", "subclass"]
    assert "custom layer _Block holds conv(s) inner" in report.unconvertible["block"]
    assert "groups=2" in report.unconvertible["grouped"]
    assert "called 2 times" in report.unconvertible["shared"]
    assert "_MyConv" in report.unconvertible["subclass"]
    assert ghost.output_shape == model.output_shape

    # Dilation and strides are kept by the primary conv; fused activations map as documented.
    assert ghost.get_layer("dilated_primary_conv").dilation_rate == (2, 2)
    assert ghost.get_layer("swish_primary_conv").strides == (2, 2)
    assert ghost.get_layer("swish_slice").stop == 5  # ceil(5/2) * 2 = 6 channels, cut to 5
    assert ghost.get_layer("swish_activation").get_config()["activation"] in ("swish", "silu")
    assert isinstance(ghost.get_layer("plain_primary_relu"), layers.ReLU)
    assert isinstance(ghost.get_layer("plain_cheap_relu"), layers.ReLU)
    assert ghost.get_layer("plain_cheap_conv").depth_multiplier == 1

    # Kept layers keep their class, their sharing and their weights.
    assert type(ghost.get_layer("subclass")) is _MyConv
    assert len(ghost.get_layer("shared")._inbound_nodes) == 2
    kept = ("grouped", "depthwise", "separable", "shared", "subclass", "block", "from_gray", "fc")
    for name in kept:
        _assert_same_weights(model.get_layer(name), ghost.get_layer(name))


def test_unconvertible_warns_or_raises():
    model = _zoo()
    with pytest.warns(UserWarning, match="unconvertible grouped"):
        ghostnet_keras.ghostify(model)
    with pytest.raises(ValueError, match=r"4 conv layer\(s\) cannot be converted.*strict=True"):
        ghostnet_keras.ghostify(model, strict=True)


def test_channels_first_is_unconvertible():
    inputs = keras.Input((4, 8, 8))
    x = layers.Conv2D(8, 3, data_format="channels_first", name="cf")(inputs)
    _, report = ghostnet_keras.ghostify(keras.Model(inputs, x), return_report=True)
    assert "channels_first" in report.unconvertible["cf"]


def test_skip_by_name_or_predicate_keeps_the_function():
    model = _zoo()
    _, report = ghostnet_keras.ghostify(model, skip=["plain", "swish"], return_report=True)
    assert report.converted == {"dilated": "dilated_concat"}
    assert report.skipped["plain"] == "excluded by `skip`"
    # Skipping every layer gives a copy that computes exactly the same function.
    copy, report = ghostnet_keras.ghostify(model, skip=lambda layer: True, return_report=True)
    assert report.converted == {}
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 4)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), copy.predict(x, verbose=0))


def test_same_as_blocks_ghost_module():
    """A stride-1 'same' conv becomes exactly blocks.ghost_module (same layers, same configs)."""
    for activation, relu in ((None, False), ("relu", True)):
        inputs = keras.Input((8, 8, 6))
        conv = layers.Conv2D(10, 1, padding="same", activation=activation, name="pw")
        ghost = ghostnet_keras.ghostify(keras.Model(inputs, conv(inputs)), ratio=2, dw_size=3)
        inputs = keras.Input((8, 8, 6))
        out = blocks.ghost_module(
            inputs, 10, ratio=2, kernel_size=1, dw_size=3, relu=relu, name="pw"
        )
        reference = keras.Model(inputs, out)

        def configs(model):
            return [(type(layer).__name__, layer.get_config()) for layer in model.layers[1:]]

        assert configs(ghost) == configs(reference)


def test_nested_functional_and_sequential(tmp_path):
    inner_in = keras.Input((12, 12, 3))
    y = layers.Conv2D(8, 3, padding="same", name="inner_conv")(inner_in)
    inner = keras.Model(inner_in, layers.ReLU(name="inner_relu")(y), name="backbone")
    seq = keras.Sequential(
        [keras.Input((12, 12, 8)), layers.Conv2D(6, 3, name="seq_conv"), layers.ReLU()],
        name="seq",
    )
    inputs = keras.Input((12, 12, 3))
    x = seq(inner(inputs))
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(2, name="fc")(x))
    ghost, report = ghostnet_keras.ghostify(model, return_report=True)
    assert sorted(report.converted) == ["inner_conv", "seq_conv"]
    backbone = ghost.get_layer("backbone")
    assert isinstance(backbone, keras.Model)
    assert backbone.get_layer("inner_conv_primary_conv").filters == 4
    assert ghost.get_layer("seq").get_layer("seq_conv_primary_conv").filters == 3
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("float32")
    assert ghost.predict(x, verbose=0).shape == (2, 2)
    ghost.save(tmp_path / "nested.keras")
    loaded = keras.saving.load_model(tmp_path / "nested.keras", safe_mode=True)
    np.testing.assert_array_equal(ghost.predict(x, verbose=0), loaded.predict(x, verbose=0))

    # A Sequential model itself.
    ghost_seq, report = ghostnet_keras.ghostify(seq, ratio=3, return_report=True)
    assert report.converted == {"seq_conv": "seq_conv_concat"}
    assert ghost_seq.get_layer("seq_conv_primary_conv").filters == 2


def test_ratio_and_dw_size_options():
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, layers.Conv2D(32, 3, padding="same", name="c")(inputs))
    for ratio, dw in ((2, 1), (3, 5), (4, 7)):
        ghost = ghostnet_keras.ghostify(model, ratio=ratio, dw_size=dw)
        assert ghost.get_layer("c_primary_conv").filters == math.ceil(32 / ratio)
        cheap = ghost.get_layer("c_cheap_conv")
        assert cheap.kernel_size == (dw, dw) and cheap.depth_multiplier == ratio - 1
        # params: primary 3*3*16*ceil(32/s), cheap dw*dw*ceil(32/s)*(s-1), 2 BNs (gamma, beta).
        m = math.ceil(32 / ratio)
        assert _params(ghost) == 9 * 16 * m + dw * dw * m * (ratio - 1) + 2 * m + 2 * m * (
            ratio - 1
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1}, "Received: ratio=1"),
        ({"ratio": 2.5}, "Received: ratio=2.5"),
        ({"dw_size": 0}, "Received: dw_size=0"),
        ({"skip": 3}, "Received: skip=3"),
    ],
)
def test_bad_arguments(kwargs, message):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match=message):
        ghostnet_keras.ghostify(model, **kwargs)


def test_not_a_functional_model():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Received: model=Sub"):
        ghostnet_keras.ghostify(Sub())


def test_ghost_conv_shapes():
    inputs = keras.Input((15, 15, 3))
    out = ghost_conv(inputs, 7, 3, strides=2, padding="valid", ratio=3, dw_size=3, name="g")
    reference = layers.Conv2D(7, 3, strides=2, padding="valid")(inputs)
    assert out.shape == reference.shape == (None, 7, 7, 7)
