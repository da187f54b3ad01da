"""The blocks GhostNetV2 and GhostNetV3 add to the C-Ghost blocks of :mod:`ghostnet_keras.blocks`.

- DFC attention (GhostNetV2, section 4.1 of the paper): a gate computed at half
  resolution from the module input by a 1x1 conv and two decoupled fully
  connected layers (depthwise 1x5 and 5x1 convs), each followed by BatchNorm,
  then a sigmoid and nearest-neighbour upsampling; it multiplies the Ghost
  module's output.
- Re-parameterisable branches (GhostNetV3, section 3.2): at training time a conv
  + BN is the sum of three parallel conv + BN branches (plus a 1x1 "scale"
  branch and a BN "skip" branch on the depthwise cheap operation);
  :func:`ghostnet_keras.reparameterize` folds each sum into one conv with a bias.

Layer names mirror the module paths of timm's ``GhostModuleV2`` / ``GhostModuleV3``
/ ``GhostBottleneckV3`` (``short_conv.2`` -> ``{name}_short_hconv``,
``primary_rpr_conv.1.bn1`` -> ``{name}_primary_rpr_conv_1_bn``); the mapping is
:func:`ghostnet_keras.converters.ghostnet_v2v3.torch_prefix`.
"""

import math

import keras
from keras import layers

from ghostnet_keras import blocks

# GhostNetV3: parallel conv + BN branches of every re-parameterisable conv (timm, paper 3.2).
NUM_REP_BRANCHES = 3
# DFC attention: kernel of the decoupled fully connected layers (paper: 1x5 and 5x1).
DFC_KERNEL = 5


@keras.saving.register_keras_serializable(package="ghostnet_keras")
class NearestUpsample(layers.Layer):
    """Nearest-neighbour upsampling of ``inputs[0]`` to the height and width of ``inputs[1]``.

    The index rule of PyTorch's ``F.interpolate(mode="nearest")``: output row ``i``
    reads input row ``floor(i * h / H)``. After a 2x2 average pool (``h = H // 2``)
    that is a 2x repetition, with the first row (column) once more in front when
    ``H`` is odd. Written with concatenations, reshapes and slices only, which
    TFLite keeps as CONCATENATION / RESHAPE / STRIDED_SLICE (all in XNNPACK, float
    and int8), not as a RESIZE_NEAREST_NEIGHBOR or TILE.
    """

    def call(self, inputs):
        x, reference = inputs
        ops = keras.ops
        shape = ops.shape(x)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        # Width: [x, x] on the channel axis is, reshaped, every column twice.
        x = ops.reshape(ops.concatenate([x, x], axis=-1), (n, h, w * 2, c))
        # Height: [x, x] on the width axis is, reshaped, every row twice.
        x = ops.reshape(ops.concatenate([x, x], axis=2), (n, h * 2, w * 2, c))
        height, width = reference.shape[1], reference.shape[2]
        if height is None or height % 2:
            x = ops.concatenate([x[:, :1], x], axis=1)
            if height is None:  # odd: keep all 2h + 1 rows; even: drop the extra first one
                x = x[:, 2 * h + 1 - ops.shape(reference)[1] :]
        if width is None or width % 2:
            x = ops.concatenate([x[:, :, :1], x], axis=2)
            if width is None:
                x = x[:, :, 2 * w + 1 - ops.shape(reference)[2] :]
        return x

    def compute_output_shape(self, input_shapes):
        x_shape, reference_shape = input_shapes
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="ghostnet_keras")
class AveragePool2x2(layers.Layer):
    """2x2 average pooling with stride 2 ("valid": odd sizes floor, as PyTorch's
    ``F.avg_pool2d(x, 2)``), computed as a depthwise convolution with constant 1/4 weights.

    Equal to ``AveragePooling2D(2)``, but in a full-integer TFLite model it is a
    DEPTHWISE_CONV_2D, which XNNPACK runs, where an int8 AVERAGE_POOL_2D falls back to the
    reference kernels (and splits the delegate graph). It has no weights.
    """

    def call(self, inputs):
        kernel = keras.ops.full((2, 2, inputs.shape[-1], 1), 0.25, dtype=inputs.dtype)
        return keras.ops.depthwise_conv(inputs, kernel, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2, c)


def dfc_attention(x, filters, kernel_size=1, strides=1, name=None):
    """The DFC attention gate of ``x`` (GhostNetV2), at half resolution, before the sigmoid.

    2x2 average pool (stride 2, :class:`AveragePool2x2`) -> ``kernel_size`` conv to
    ``filters`` + BN -> depthwise 1x5 conv + BN -> depthwise 5x1 conv + BN. Layers ``{name}_pool``,
    ``{name}_conv``/``_bn``, ``{name}_hconv``/``_hbn``, ``{name}_vconv``/``_vbn``.
    """
    g = AveragePool2x2(name=f"{name}_pool")(x)
    g = blocks.conv(g, filters, kernel_size, strides, name=f"{name}_conv")
    g = blocks.batch_norm(g, f"{name}_bn")
    g = layers.DepthwiseConv2D(
        (1, DFC_KERNEL), padding="same", use_bias=False, name=f"{name}_hconv"
    )(g)
    g = blocks.batch_norm(g, f"{name}_hbn")
    g = layers.DepthwiseConv2D(
        (DFC_KERNEL, 1), padding="same", use_bias=False, name=f"{name}_vconv"
    )(g)
    return blocks.batch_norm(g, f"{name}_vbn")


def apply_dfc(features, module_input, kernel_size=1, strides=1, name=None):
    """Multiplies ``features`` by the DFC attention gate of ``module_input``.

    The gate is ``sigmoid`` (the logistic function, as in the official code and timm)
    of :func:`dfc_attention`, upsampled to the size of ``features`` by
    :class:`NearestUpsample`. Layers ``{name}_short_*`` and ``{name}_attn_mul``.
    """
    g = dfc_attention(module_input, features.shape[-1], kernel_size, strides, name=f"{name}_short")
    g = layers.Activation("sigmoid", name=f"{name}_short_gate")(g)
    g = NearestUpsample(name=f"{name}_short_upsample")([g, features])
    return layers.Multiply(name=f"{name}_attn_mul")([features, g])


def ghost_module_v2(x, filters, relu=True, name=None):
    """GhostNetV2's Ghost module with DFC attention (``GhostModuleV2``, mode "attn").

    The C-Ghost module of :func:`ghostnet_keras.blocks.ghost_module` (ratio 2, 1x1
    primary conv, 3x3 cheap depthwise conv) times the DFC attention gate of its
    input.
    """
    out = blocks.ghost_module(x, filters, relu=relu, name=name)
    return apply_dfc(out, x, name=name)


def rep_conv_bn(
    x, filters, kernel_size=1, strides=1, depthwise=False, scale=False, skip=False, name=None
):
    """A re-parameterisable conv + BN (GhostNetV3): the sum of parallel branches.

    ``NUM_REP_BRANCHES`` conv + BN branches ``{name}_rpr_conv_<i>_conv``/``_bn``
    (depthwise when ``depthwise``), plus with ``scale`` a 1x1 (depthwise) conv + BN
    ``{name}_rpr_scale_conv``/``_bn`` and with ``skip`` a BN of the input
    ``{name}_rpr_skip`` (stride 1 and ``filters == channels`` only); summed by
    ``{name}_add``. A strided kxk branch reads the input padded symmetrically by
    ``k // 2`` (``{name}_pad``, shared), the 1x1 scale branch the input itself, so
    that both sample the same pixels and the sum folds into one kxk conv. Depthwise
    branches keep the channel count: ``filters`` must equal the input's.
    """
    if (depthwise or skip) and filters != x.shape[-1]:
        raise ValueError(
            f"Depthwise and skip branches keep the {x.shape[-1]} input channels. "
            f"Received: filters={filters}"
        )
    if skip and strides != 1:
        raise ValueError(f"A skip branch needs stride 1. Received: strides={strides}")
    padded = x
    if strides > 1 and kernel_size > 1:
        padded = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
    padding = "valid" if strides > 1 else "same"

    def make_conv(k, layer_name):
        if depthwise:
            return layers.DepthwiseConv2D(
                k, strides=strides, padding=padding, use_bias=False, name=layer_name
            )
        return layers.Conv2D(
            filters, k, strides=strides, padding=padding, use_bias=False, name=layer_name
        )

    branches = []
    for i in range(NUM_REP_BRANCHES):
        b = make_conv(kernel_size, f"{name}_rpr_conv_{i}_conv")(padded)
        branches.append(blocks.batch_norm(b, f"{name}_rpr_conv_{i}_bn"))
    if scale:
        b = make_conv(1, f"{name}_rpr_scale_conv")(x)
        branches.append(blocks.batch_norm(b, f"{name}_rpr_scale_bn"))
    if skip:
        branches.append(blocks.batch_norm(x, f"{name}_rpr_skip"))
    return layers.Add(name=f"{name}_add")(branches)


def ghost_module_v3(x, filters, relu=True, dfc=False, name=None):
    """GhostNetV3's Ghost module at training time (``GhostModuleV3``).

    Primary: a re-parameterisable 1x1 conv (3 branches, ``{name}_primary_*``) to
    ``ceil(filters / 2)`` channels, ReLU if ``relu``. Cheap: a re-parameterisable
    3x3 depthwise conv with 3 branches, a 1x1 depthwise scale branch and a BN skip
    branch (``{name}_cheap_*``), ReLU if ``relu``. Output: concat[primary, cheap],
    times the DFC attention gate of ``x`` if ``dfc`` (timm's mode "shortcut").
    """
    init_filters = math.ceil(filters / 2)
    primary = rep_conv_bn(x, init_filters, 1, name=f"{name}_primary")
    if relu:
        primary = layers.ReLU(name=f"{name}_primary_relu")(primary)
    cheap = rep_conv_bn(
        primary, init_filters, 3, depthwise=True, scale=True, skip=True, name=f"{name}_cheap"
    )
    if relu:
        cheap = layers.ReLU(name=f"{name}_cheap_relu")(cheap)
    out = layers.Concatenate(name=f"{name}_concat")([primary, cheap])
    if init_filters * 2 != filters:
        out = blocks.ChannelSlice(0, filters, name=f"{name}_slice")(out)
    if dfc:
        out = apply_dfc(out, x, name=name)
    return out


def ghost_bottleneck_v2(
    x,
    mid_filters,
    out_filters,
    kernel_size=3,
    strides=1,
    se_ratio=0.0,
    attention=True,
    version=2,
    name=None,
):
    """The GhostNetV2 (``version=2``) or GhostNetV3 (``version=3``, training form) bottleneck.

    As :func:`ghostnet_keras.blocks.ghost_bottleneck`, with the expansion module
    carrying DFC attention when ``attention`` (:func:`ghost_module_v2` /
    :func:`ghost_module_v3`); in V3 both Ghost modules and the strided depthwise
    conv are re-parameterisable (the depthwise conv with a 1x1 scale branch:
    ``{name}_dw_rpr_*``). The shortcut is the C-Ghost one.
    """
    if version not in (2, 3):
        raise ValueError(f"`version` must be 2 or 3. Received: version={version!r}")
    shortcut = x
    if version == 2:
        ghost1 = ghost_module_v2 if attention else blocks.ghost_module
        x = ghost1(x, mid_filters, relu=True, name=f"{name}_ghost1")
    else:
        x = ghost_module_v3(x, mid_filters, relu=True, dfc=attention, name=f"{name}_ghost1")
    if strides > 1:
        if version == 2:
            x = blocks.depthwise_conv(x, kernel_size, strides, name=f"{name}_dw_conv")
            x = blocks.batch_norm(x, f"{name}_dw_bn")
        else:
            x = rep_conv_bn(
                x, mid_filters, kernel_size, strides, depthwise=True, scale=True, name=f"{name}_dw"
            )
    if se_ratio:
        x = blocks.squeeze_excite(
            x, blocks.make_divisible(mid_filters * se_ratio, 4), name=f"{name}_se"
        )
    if version == 2:
        x = blocks.ghost_module(x, out_filters, relu=False, name=f"{name}_ghost2")
    else:
        x = ghost_module_v3(x, out_filters, relu=False, name=f"{name}_ghost2")
    return blocks.ghost_shortcut_add(x, shortcut, kernel_size, strides, name)
