"""The C-Ghost building blocks, plugged into plain Functional models."""

import math

import keras
import numpy as np
import pytest

from ghostnet_keras import blocks


def _model(fn, shape=(16, 16, 8)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, fn(inputs))


def _params(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


@pytest.mark.parametrize("ratio, out", [(2, 16), (2, 15), (3, 16), (4, 10), (5, 7)])
def test_ghost_module_widths_and_params(ratio, out):
    cin, k, d = 8, 1, 3
    model = _model(lambda x: blocks.ghost_module(x, out, ratio=ratio, dw_size=d, name="g"))
    init = math.ceil(out / ratio)
    assert model.output_shape == (None, 16, 16, out)
    # primary k x k conv + BN, cheap d x d depthwise (multiplier ratio-1) + BN.
    expected = cin * init * k * k + 2 * init + init * (ratio - 1) * d * d + 2 * init * (ratio - 1)
    assert _params(model) == expected
    has_slice = any(isinstance(layer, blocks.ChannelSlice) for layer in model.layers)
    assert has_slice == (init * ratio != out)


def test_ghost_module_output_is_primary_then_its_ghosts():
    model = _model(lambda x: blocks.ghost_module(x, 5, ratio=3, relu=False, name="g"))
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 8)).astype("float32")
    out = model.predict(x, verbose=0)
    primary = keras.Model(model.inputs, model.get_layer("g_primary_bn").output)
    cheap = keras.Model(model.inputs, model.get_layer("g_cheap_bn").output)
    p, c = primary.predict(x, verbose=0), cheap.predict(x, verbose=0)
    assert p.shape[-1] == 2 and c.shape[-1] == 4
    np.testing.assert_allclose(out, np.concatenate([p, c], -1)[..., :5], atol=1e-6)


def test_ghost_module_ratio_and_filters_validation():
    with pytest.raises(ValueError, match="Received: ratio=0"):
        _model(lambda x: blocks.ghost_module(x, 8, ratio=0, name="g"))
    with pytest.raises(ValueError, match="Received: filters=0"):
        _model(lambda x: blocks.ghost_module(x, 0, name="g"))


def test_hard_sigmoid_gate_is_relu6_x_plus_3_over_6():
    model = _model(lambda x: blocks.hard_sigmoid(x, name="gate"), shape=(7,))
    x = np.array([[-10, -3, -1.5, 0, 1, 3, 10]], "float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.clip(x + 3, 0, 6) / 6, rtol=1e-6, atol=1e-7
    )


def test_squeeze_excite_scales_channels():
    model = _model(lambda x: blocks.squeeze_excite(x, 4, name="se"))
    # reduce 8->4 (+bias) and expand 4->8 (+bias)
    assert _params(model) == 8 * 4 + 4 + 4 * 8 + 8
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 8)).astype("float32")
    y = model.predict(x, verbose=0)
    scale = y / x
    # One gate value per image and channel, in [0, 1].
    np.testing.assert_allclose(scale, scale[:, :1, :1, :].repeat(16, 1).repeat(16, 2), rtol=1e-4)
    assert scale.min() >= 0 and scale.max() <= 1


@pytest.mark.parametrize(
    "cin, mid, out, stride, se, shortcut",
    [
        (16, 48, 16, 1, 0, False),  # identity shortcut
        (16, 48, 24, 1, 0.25, True),  # width change at stride 1 (like block 9)
        (16, 48, 24, 2, 0, True),  # stride 2
        (16, 48, 16, 2, 0.25, True),  # stride 2, same width
    ],
)
def test_ghost_bottleneck_variants(cin, mid, out, stride, se, shortcut):
    model = _model(
        lambda x: blocks.ghost_bottleneck(
            x, mid, out, kernel_size=5, strides=stride, se_ratio=se, name="b"
        ),
        shape=(16, 16, cin),
    )
    assert model.output_shape == (None, 16 // stride, 16 // stride, out)
    names = {layer.name for layer in model.layers}
    assert ("b_shortcut_pw_conv" in names) == shortcut
    assert ("b_dw_conv" in names) == (stride > 1)
    assert ("b_se_reduce" in names) == bool(se)
    x = np.random.default_rng(2).normal(size=(2, 16, 16, cin)).astype("float32")
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_strided_convs_pad_symmetrically_like_pytorch():
    """A 3x3 stride-2 conv of an impulse: PyTorch padding 1 on every side puts it here."""
    model = _model(lambda x: blocks.conv(x, 1, 3, strides=2, name="c"), shape=(8, 8, 1))
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[0, 0] = 1.0  # output(i, j) = padded_input(2i, 2j) = input(2i - 1, 2j - 1)
    model.get_layer("c").set_weights([kernel])
    x = np.zeros((1, 8, 8, 1), "float32")
    x[0, 1, 1, 0] = 1.0
    y = model.predict(x, verbose=0)[0, :, :, 0]
    assert y.shape == (4, 4) and y[1, 1] == 1.0 and y.sum() == 1.0


def test_blocks_plug_into_any_model_and_train():
    inputs = keras.Input((32, 32, 3))
    x = blocks.conv_bn(inputs, 16, 3, strides=2, name="stem")
    x = blocks.ghost_bottleneck(x, 32, 24, strides=2, se_ratio=0.25, name="b1")
    x = blocks.ghost_module(x, 30, ratio=3, name="g")
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(3).normal(size=(4, 32, 32, 3)).astype("float32")
    history = model.fit(x, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
