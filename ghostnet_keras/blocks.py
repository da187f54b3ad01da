"""Building blocks shared by every GhostNet family, usable in any Functional model.

Each block is a function ``block(x, ..., name=...)`` that adds layers to a Keras
Functional graph and returns the output tensor, in the manner of the private
block functions of ``keras.applications``. Layer names are deterministic,
derived from ``name``, so that checkpoints from the reference PyTorch code can
be mapped onto them one to one.

Only layers that exist with the same meaning in Keras 3 and in ``tf_keras`` are
used (plus :class:`ChannelSlice`), so the same graph can be rebuilt for
quantization-aware training. Strided convolutions pad symmetrically
(``ZeroPadding2D(k // 2)`` then ``"valid"``), as PyTorch does, because Keras'
``padding="same"`` pads more on the bottom/right at stride 2.
"""

import math

import keras
from keras import layers

# PyTorch's BatchNorm2d defaults: eps 1e-5, running-average momentum 0.1.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def make_divisible(value, divisor=4, round_limit=0.9):
    """Rounds a channel count to the nearest multiple of ``divisor``.

    The result is at least ``divisor`` and never below ``round_limit * value``
    (the rounding used by the reference GhostNet and MobileNet code).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


@keras.saving.register_keras_serializable(package="ghostnet_keras")
class ChannelSlice(layers.Layer):
    """Keeps channels ``[start, stop)`` of a channels-last tensor.

    A named, serializable replacement for ``Lambda(lambda x: x[..., a:b])``
    (``Lambda`` layers do not load with ``safe_mode=True``).
    """

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= start < stop:
            raise ValueError(
                f"ChannelSlice needs 0 <= start < stop. Received: start={start}, stop={stop}"
            )
        self.start = int(start)
        self.stop = int(stop)

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def batch_norm(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def conv(x, filters, kernel_size=1, strides=1, use_bias=False, groups=1, name=None):
    """A 2D convolution with PyTorch-style symmetric padding ``kernel_size // 2``."""
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=use_bias,
        name=name,
    )(x)


def depthwise_conv(x, kernel_size, strides=1, depth_multiplier=1, name=None):
    """A bias-free depthwise convolution with symmetric padding ``kernel_size // 2``."""
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=padding,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=name,
    )(x)


def conv_bn(x, filters, kernel_size=1, strides=1, activation=True, groups=1, name=None):
    """Convolution (no bias) + BatchNorm (+ ReLU): layers ``{name}_conv``, ``_bn``, ``_relu``."""
    x = conv(x, filters, kernel_size, strides, groups=groups, name=f"{name}_conv")
    x = batch_norm(x, f"{name}_bn")
    if activation:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def hard_sigmoid(x, name):
    """The gate ``relu6(x + 3) / 6`` written as ``clip(x / 6 + 1 / 2, 0, 1)``.

    Spelled out with two plain layers because ``hard_sigmoid`` means
    ``0.2 x + 0.5`` in tf_keras.
    """
    x = layers.Rescaling(1.0 / 6.0, offset=0.5, name=f"{name}_scale")(x)
    return layers.ReLU(max_value=1.0, name=name)(x)


def squeeze_excite(x, reduced_filters, name):
    """Squeeze-and-excitation: GAP, 1x1 conv, ReLU, 1x1 conv, hard-sigmoid gate, scale."""
    filters = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(reduced_filters, 1, name=f"{name}_reduce")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Conv2D(filters, 1, name=f"{name}_expand")(s)
    s = hard_sigmoid(s, name=f"{name}_gate")
    return layers.Multiply(name=f"{name}_mul")([x, s])


def ghost_module(x, filters, ratio=2, kernel_size=1, dw_size=3, strides=1, relu=True, name=None):
    """The C-Ghost module (paper section 3.1).

    A primary convolution makes ``ceil(filters / ratio)`` intrinsic feature maps;
    a cheap depthwise ``dw_size`` convolution with depth multiplier ``ratio - 1``
    makes the ghost maps from them. Both are followed by BatchNorm (and ReLU
    when ``relu``); their concatenation is cut to ``filters`` channels.

    Layers: ``{name}_primary_conv/_primary_bn/_primary_relu``,
    ``{name}_cheap_conv/_cheap_bn/_cheap_relu``, ``{name}_concat``, ``{name}_slice``.
    """
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"`ratio` must be an integer >= 1. Received: ratio={ratio}")
    if int(filters) != filters or filters < 1:
        raise ValueError(f"`filters` must be a positive integer. Received: filters={filters}")
    ratio = int(ratio)
    init_filters = math.ceil(filters / ratio)
    primary = conv(x, init_filters, kernel_size, strides, name=f"{name}_primary_conv")
    primary = batch_norm(primary, f"{name}_primary_bn")
    if relu:
        primary = layers.ReLU(name=f"{name}_primary_relu")(primary)
    if ratio == 1:
        return primary
    cheap = depthwise_conv(primary, dw_size, depth_multiplier=ratio - 1, name=f"{name}_cheap_conv")
    cheap = batch_norm(cheap, f"{name}_cheap_bn")
    if relu:
        cheap = layers.ReLU(name=f"{name}_cheap_relu")(cheap)
    out = layers.Concatenate(name=f"{name}_concat")([primary, cheap])
    if init_filters * ratio != filters:
        out = ChannelSlice(0, filters, name=f"{name}_slice")(out)
    return out


def ghost_bottleneck(
    x,
    mid_filters,
    out_filters,
    kernel_size=3,
    strides=1,
    se_ratio=0.0,
    ratio=2,
    dw_size=3,
    name=None,
):
    """The C-Ghost bottleneck (paper Figure 3).

    Ghost module (expand, ReLU) -> depthwise ``kernel_size`` conv + BN if
    ``strides > 1`` -> squeeze-excite if ``se_ratio`` -> ghost module (project,
    no activation) -> add the shortcut. The shortcut is the identity when the
    shape is kept, else depthwise conv + BN + 1x1 conv + BN.

    Layers: ``{name}_ghost1_*``, ``{name}_dw_conv``, ``{name}_dw_bn``,
    ``{name}_se_*``, ``{name}_ghost2_*``, ``{name}_shortcut_*``, ``{name}_add``.
    """
    in_filters = x.shape[-1]
    shortcut = x
    x = ghost_module(x, mid_filters, ratio=ratio, dw_size=dw_size, relu=True, name=f"{name}_ghost1")
    if strides > 1:
        x = depthwise_conv(x, kernel_size, strides, name=f"{name}_dw_conv")
        x = batch_norm(x, f"{name}_dw_bn")
    if se_ratio:
        x = squeeze_excite(x, make_divisible(mid_filters * se_ratio, 4), name=f"{name}_se")
    x = ghost_module(
        x, out_filters, ratio=ratio, dw_size=dw_size, relu=False, name=f"{name}_ghost2"
    )
    if in_filters != out_filters or strides > 1:
        shortcut = depthwise_conv(shortcut, kernel_size, strides, name=f"{name}_shortcut_dw_conv")
        shortcut = batch_norm(shortcut, f"{name}_shortcut_dw_bn")
        shortcut = conv_bn(shortcut, out_filters, 1, activation=False, name=f"{name}_shortcut_pw")
    return layers.Add(name=f"{name}_add")([x, shortcut])
