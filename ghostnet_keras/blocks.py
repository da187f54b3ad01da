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

import functools
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


def batch_norm(x, name, **layer_kwargs):
    return layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name, **layer_kwargs
    )(x)


def _padded(layer_class, x, kernel_size, strides, padding, name, **layer_kwargs):
    """``layer_class(kernel_size, strides, ...)`` on ``x``. ``padding=None``: PyTorch's
    symmetric ``kernel_size // 2`` (``{name}_pad`` before a strided conv, else "same");
    "same" or "valid": Keras' own."""
    if padding is None:
        padding = "same"
        if strides > 1 and kernel_size > 1:
            x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
            padding = "valid"
    return layer_class(
        kernel_size=kernel_size, strides=strides, padding=padding, name=name, **layer_kwargs
    )(x)


def conv(
    x,
    filters,
    kernel_size=1,
    strides=1,
    use_bias=False,
    groups=1,
    name=None,
    *,
    padding=None,
    **conv_kwargs,
):
    """A 2D convolution, by default with PyTorch-style symmetric padding ``kernel_size // 2``.

    ``padding="same"`` or ``"valid"`` uses Keras' padding instead; ``conv_kwargs``
    (``dilation_rate``, ``kernel_initializer``, ``dtype``...) go to ``Conv2D``.
    """
    return _padded(
        layers.Conv2D,
        x,
        kernel_size,
        strides,
        padding,
        name,
        filters=filters,
        groups=groups,
        use_bias=use_bias,
        **conv_kwargs,
    )


def depthwise_conv(x, kernel_size, strides=1, depth_multiplier=1, name=None, **layer_kwargs):
    """A bias-free depthwise convolution with symmetric padding ``kernel_size // 2``."""
    return _padded(
        layers.DepthwiseConv2D,
        x,
        kernel_size,
        strides,
        None,
        name,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        **layer_kwargs,
    )


def conv_bn(
    x,
    filters,
    kernel_size=1,
    strides=1,
    activation=True,
    groups=1,
    name=None,
    conv_suffix="_conv",
):
    """Convolution (no bias) + BatchNorm (+ ReLU): layers ``{name}{conv_suffix}``,
    ``{name}_bn``, ``{name}_relu``.

    The stems and last convs of the models use ``{name}_conv``; the residual blocks
    name the conv ``{name}`` itself (:data:`conv_norm`, torchvision's ``conv1``/``bn1``).
    """
    x = conv(x, filters, kernel_size, strides, groups=groups, name=f"{name}{conv_suffix}")
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


def squeeze_excite(x, reduced_filters, name, gate="hard_sigmoid"):
    """Squeeze-and-excitation: GAP, 1x1 conv, ReLU, 1x1 conv, gate, scale.

    ``gate``: ``"hard_sigmoid"`` (``relu6(x + 3) / 6``, the paper's) or ``"clip"``
    (``clip(x, 0, 1)``, PaddleClas's GhostNet).
    """
    filters = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(reduced_filters, 1, name=f"{name}_reduce")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Conv2D(filters, 1, name=f"{name}_expand")(s)
    if gate == "clip":
        s = layers.ReLU(max_value=1.0, name=f"{name}_gate")(s)
    else:
        s = hard_sigmoid(s, name=f"{name}_gate")
    return layers.Multiply(name=f"{name}_mul")([x, s])


def ghost_module(
    x,
    filters,
    ratio=2,
    kernel_size=1,
    dw_size=3,
    strides=1,
    relu=True,
    name=None,
    *,
    padding=None,
    activation=None,
    groups=1,
    primary_kwargs=None,
    **layer_kwargs,
):
    """The C-Ghost module (paper section 3.1): the one implementation of the project.

    A primary convolution (``kernel_size``, ``strides``) makes ``ceil(filters / ratio)``
    intrinsic feature maps; a cheap depthwise ``dw_size`` convolution with depth
    multiplier ``ratio - 1`` makes the ghost maps from them. Both are followed by
    BatchNorm (and ReLU when ``relu``); their concatenation is cut to ``filters``
    channels.

    The keyword arguments make it a stand-in for any ``Conv2D`` (what
    :func:`ghostnet_keras.ghostify` uses): ``padding`` of the primary conv (``None``:
    PyTorch's symmetric padding; ``"same"``/``"valid"``: Keras'), ``activation`` applied
    to the output by a layer ``{name}_activation``, ``primary_kwargs`` for the primary
    conv (``dilation_rate``, ``kernel_initializer``...) and ``layer_kwargs`` (``dtype``,
    ``trainable``) for every layer. ``groups`` must be 1 (for the ``conv_fn`` hook).

    Layers: ``{name}_primary_conv/_primary_bn/_primary_relu``,
    ``{name}_cheap_conv/_cheap_bn/_cheap_relu``, ``{name}_concat``, ``{name}_slice``,
    ``{name}_activation``.
    """
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"`ratio` must be an integer >= 1. Received: ratio={ratio}")
    if int(filters) != filters or filters < 1:
        raise ValueError(f"`filters` must be a positive integer. Received: filters={filters}")
    if groups != 1:
        raise ValueError(f"A C-Ghost module has no grouped convs. Received: groups={groups}")
    ratio = int(ratio)
    init_filters = math.ceil(filters / ratio)
    primary = conv(
        x,
        init_filters,
        kernel_size,
        strides,
        name=f"{name}_primary_conv",
        padding=padding,
        **(primary_kwargs or {}),
        **layer_kwargs,
    )
    primary = batch_norm(primary, f"{name}_primary_bn", **layer_kwargs)
    if relu:
        primary = layers.ReLU(name=f"{name}_primary_relu", **layer_kwargs)(primary)
    if ratio == 1:
        out = primary
    else:
        cheap = depthwise_conv(
            primary, dw_size, depth_multiplier=ratio - 1, name=f"{name}_cheap_conv", **layer_kwargs
        )
        cheap = batch_norm(cheap, f"{name}_cheap_bn", **layer_kwargs)
        if relu:
            cheap = layers.ReLU(name=f"{name}_cheap_relu", **layer_kwargs)(cheap)
        out = layers.Concatenate(name=f"{name}_concat", **layer_kwargs)([primary, cheap])
        if init_filters * ratio != filters:
            out = ChannelSlice(0, filters, name=f"{name}_slice", **layer_kwargs)(out)
    if activation is not None:
        out = layers.Activation(activation, name=f"{name}_activation", **layer_kwargs)(out)
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
    se_gate="hard_sigmoid",
    se_width="divisible",
    name=None,
):
    """The C-Ghost bottleneck (paper Figure 3).

    Ghost module (expand, ReLU) -> depthwise ``kernel_size`` conv + BN if
    ``strides > 1`` -> squeeze-excite if ``se_ratio`` (reduced width
    ``make_divisible(mid * se_ratio, 4)``, or with ``se_width="floor"``
    ``int(mid * se_ratio)``; gate ``se_gate``, see :func:`squeeze_excite`) -> ghost module (project,
    no activation) -> add the shortcut. The shortcut is the identity when the
    shape is kept, else depthwise conv + BN + 1x1 conv + BN.

    Layers: ``{name}_ghost1_*``, ``{name}_dw_conv``, ``{name}_dw_bn``,
    ``{name}_se_*``, ``{name}_ghost2_*``, ``{name}_shortcut_*``, ``{name}_add``.
    """
    shortcut = x
    x = ghost_module(x, mid_filters, ratio=ratio, dw_size=dw_size, relu=True, name=f"{name}_ghost1")
    if strides > 1:
        x = depthwise_conv(x, kernel_size, strides, name=f"{name}_dw_conv")
        x = batch_norm(x, f"{name}_dw_bn")
    if se_ratio:
        if se_width == "floor":
            reduced = int(mid_filters * se_ratio)
        else:
            reduced = make_divisible(mid_filters * se_ratio, 4)
        x = squeeze_excite(x, reduced, name=f"{name}_se", gate=se_gate)
    x = ghost_module(
        x, out_filters, ratio=ratio, dw_size=dw_size, relu=False, name=f"{name}_ghost2"
    )
    return ghost_shortcut_add(x, shortcut, kernel_size, strides, name)


def ghost_shortcut_add(x, shortcut, kernel_size, strides, name):
    """Adds a Ghost bottleneck's shortcut to its output ``x`` (``{name}_add``).

    The identity when ``shortcut`` has ``x``'s shape, else depthwise ``kernel_size`` conv
    (stride ``strides``) + BN + 1x1 conv + BN (``{name}_shortcut_*``), no activations.
    """
    out_filters = x.shape[-1]
    if shortcut.shape[-1] != out_filters or strides > 1:
        shortcut = depthwise_conv(shortcut, kernel_size, strides, name=f"{name}_shortcut_dw_conv")
        shortcut = batch_norm(shortcut, f"{name}_shortcut_dw_bn")
        shortcut = conv_bn(shortcut, out_filters, 1, activation=False, name=f"{name}_shortcut_pw")
    return layers.Add(name=f"{name}_add")([x, shortcut])


# ---------------------------------------------------------------------------
# Residual blocks (ResNet, RegNetX, G-GhostNet) and the G-Ghost stage.
# ---------------------------------------------------------------------------


# The default ``conv_fn`` of the residual blocks below: conv + BN (+ ReLU) with the conv layer
# named ``name`` itself (``{name}``, ``{name}_bn``, ``{name}_relu``), torchvision's ``conv1`` /
# ``bn1``. A replacement (for example :func:`ghost_conv`) takes the same arguments
# ``(x, filters, kernel_size, strides=, groups=, activation=, name=)`` and returns the
# normalised (and, with ``activation``, ReLU-activated) features.
conv_norm = functools.partial(conv_bn, conv_suffix="")


def ghost_conv(ratio=2, dw_size=3):
    """A ``conv_fn`` that makes every conv + BN (+ ReLU) a C-Ghost module with ratio ``ratio``.

    The primary convolution keeps the replaced conv's kernel size and stride
    (paper section 5.2: "replace all the convolutional layers"); the ReLU, when
    the replaced conv has one, acts on both the primary and the cheap maps as
    in the expansion module of the Ghost bottleneck.
    """

    def ghost_conv_fn(x, filters, kernel_size=1, strides=1, groups=1, activation=True, name=None):
        # ghost_module(x, filters, ratio, kernel_size, dw_size, strides, relu, name)
        return ghost_module(
            x, filters, ratio, kernel_size, dw_size, strides, activation, name, groups=groups
        )

    return ghost_conv_fn


def _shortcut(x, shortcut, filters, strides, conv_fn, name):
    """Identity when the shape is kept, else 1x1 conv (stride) + BN: ``{name}_downsample``."""
    if strides > 1 or shortcut.shape[-1] != filters:
        shortcut = conv_fn(
            shortcut, filters, 1, strides=strides, activation=False, name=f"{name}_downsample"
        )
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def basic_block(x, filters, strides=1, conv_fn=None, name=None):
    """The ResNet basic block: 3x3 conv (stride) + BN + ReLU, 3x3 conv + BN, add, ReLU.

    The shortcut is a 1x1 conv (stride) + BN when the shape changes (ResNet
    option B, as torchvision). Layers: ``{name}_conv1*``, ``{name}_conv2*``,
    ``{name}_downsample*``, ``{name}_add``, ``{name}_out``.
    """
    conv_fn = conv_fn or conv_norm
    shortcut = x
    x = conv_fn(x, filters, 3, strides=strides, name=f"{name}_conv1")
    x = conv_fn(x, filters, 3, activation=False, name=f"{name}_conv2")
    return _shortcut(x, shortcut, filters, strides, conv_fn, name)


def bottleneck_block(
    x,
    filters,
    strides=1,
    mid_filters=None,
    expansion=4,
    groups=1,
    se_ratio=0.0,
    conv_fn=None,
    name=None,
):
    """The residual bottleneck: 1x1 conv, 3x3 conv (stride, ``groups``), [SE], 1x1 conv, add, ReLU.

    ``filters`` is the OUTPUT width; the middle width is ``mid_filters`` or
    ``filters // expansion`` (ResNet50: ``filters=256, expansion=4`` gives 64;
    RegNetX: ``expansion=1``). The stride sits on the 3x3 conv (torchvision's
    ResNet v1.5), every conv is followed by BN (eps 1e-5) and ReLU except the
    last one, whose output is added to the shortcut before the final ReLU.
    ``se_ratio > 0`` puts a squeeze-excite (C-GhostNet's, reduced width
    ``make_divisible(mid * se_ratio, 4)``) on the 3x3 output.

    Layers: ``{name}_conv1*``, ``{name}_conv2*``, ``{name}_se_*``, ``{name}_conv3*``,
    ``{name}_downsample*``, ``{name}_add``, ``{name}_out``.
    """
    conv_fn = conv_fn or conv_norm
    mid = mid_filters or filters // expansion
    shortcut = x
    x = conv_fn(x, mid, 1, name=f"{name}_conv1")
    x = conv_fn(x, mid, 3, strides=strides, groups=groups, name=f"{name}_conv2")
    if se_ratio:
        x = squeeze_excite(x, make_divisible(mid * se_ratio, 4), name=f"{name}_se")
    x = conv_fn(x, filters, 1, activation=False, name=f"{name}_conv3")
    return _shortcut(x, shortcut, filters, strides, conv_fn, name)


def regnetx_block(x, filters, strides=1, group_width=1, conv_fn=None, name=None):
    """The RegNetX block (bottleneck ratio 1): 1x1, grouped 3x3 of group width
    ``group_width``, 1x1, all ``filters`` wide; ``filters // min(filters, group_width)``
    groups (so a block narrower than the group width is one group)."""
    groups = filters // min(filters, group_width)
    return bottleneck_block(
        x, filters, strides, mid_filters=filters, groups=groups, conv_fn=conv_fn, name=name
    )


# The G-Ghost cheap operations: a conv (no bias) + BN of this kernel size, the identity, or
# none (paper Tables 13 and 14).
CHEAP_CONV_KERNELS = {"conv1x1": 1, "conv3x3": 3, "conv5x5": 5}
CHEAP_OPS = (*CHEAP_CONV_KERNELS, "identity", "none")


def g_ghost_thin_filters(filters, ghost_ratio, divisor=1):
    """Width of the complicated (thin) path of a G-Ghost stage.

    ``int(filters * (1 - ghost_ratio) / divisor) * divisor``: rounded DOWN to a
    multiple of ``divisor`` (the official G-Ghost RegNet rounds to the thin
    group width ``int(0.75 * group_width)``). The cheap path gets the rest.
    """
    return int(filters * (1 - ghost_ratio) / divisor) * divisor


def _g_ghost_split(depth, filters, ghost_ratio, cheap_op, mix, last_block, thin_divisor):
    """Checks a G-Ghost stage's arguments; ``(thin block count, thin width)``."""
    if cheap_op not in CHEAP_OPS:
        raise ValueError(f"`cheap_op` must be one of {CHEAP_OPS}. Received: cheap_op={cheap_op!r}")
    if not 0 <= ghost_ratio < 1:
        raise ValueError(f"`ghost_ratio` must be in [0, 1). Received: ghost_ratio={ghost_ratio!r}")
    thin_count = depth - 2 if last_block else depth - 1
    if thin_count < 1:
        raise ValueError(
            "A G-Ghost stage needs at least one thin block (depth >= 3, or >= 2 with "
            f"last_block=False). Received: depth={depth}"
        )
    if cheap_op == "none" and mix:
        raise ValueError(
            "`mix` adds to the cheap features, so it needs a cheap operation; pass mix=False "
            f"with cheap_op='none'. Received: mix={mix!r}"
        )
    raw = g_ghost_thin_filters(filters, ghost_ratio, thin_divisor)
    cheap = filters - raw
    if raw < 1 or cheap < 1:
        raise ValueError(
            f"`ghost_ratio` leaves an empty path: {filters} channels split into {raw} "
            f"complicated + {cheap} cheap. Received: ghost_ratio={ghost_ratio!r}"
        )
    return thin_count, raw


def _g_ghost_cheap_path(x0, raw, filters, cheap_op, full_input, name):
    """Step 3 of :func:`g_ghost_stage`: the cheap features from the first block's output."""
    if full_input and cheap_op != "identity":
        c = x0
    else:
        c = ChannelSlice(raw, filters, name=f"{name}_cheap_slice")(x0)
    if cheap_op != "identity":
        c = conv(c, filters - raw, CHEAP_CONV_KERNELS[cheap_op], name=f"{name}_cheap_conv")
        c = batch_norm(c, f"{name}_cheap_bn")
    return c


def _g_ghost_mix(c, features, cheap, name):
    """Step 4 of :func:`g_ghost_stage` (Eq. 11-12): the cheap features plus a per-channel
    offset computed from every block's output."""
    m = layers.Concatenate(name=f"{name}_merge_concat")(features)
    m = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_merge_pool")(m)
    m = conv(m, cheap, 1, name=f"{name}_merge_conv1")
    m = batch_norm(m, f"{name}_merge_bn1")
    m = layers.ReLU(name=f"{name}_merge_relu")(m)
    m = conv(m, cheap, 1, name=f"{name}_merge_conv2")
    m = batch_norm(m, f"{name}_merge_bn2")
    return layers.Add(name=f"{name}_merge_add")([c, m])


def g_ghost_stage(
    x,
    block_fn,
    depth,
    filters,
    strides,
    ghost_ratio=0.5,
    cheap_op="conv1x1",
    mix=True,
    thin_block_fn=None,
    thin_divisor=1,
    last_block=True,
    full_input=False,
    name=None,
):
    """A G-Ghost stage (paper section 4, Eq. 6-12, Figure 5) of ``depth`` blocks.

    ``block_fn(x, filters, strides=..., name=...)`` builds one block of any
    kind (basic, bottleneck, RegNetX, Ghost bottleneck: bind its other
    arguments with ``functools.partial``); ``thin_block_fn`` (default
    ``block_fn``) builds the thin blocks, e.g. with the thin group width.

    Structure (as the official G-Ghost RegNet code):

    1. ``x0 = block_fn(x, filters, strides)``, the first block at full width
       (layers ``{name}_base_*``).
    2. The complicated path: the first ``raw = g_ghost_thin_filters(filters,
       ghost_ratio, thin_divisor)`` channels of ``x0`` (``ChannelSlice``)
       through ``depth - 2`` thin blocks ``raw`` wide (``{name}_layers_<i>_*``),
       ``depth - 1`` with ``last_block=False``.
    3. The cheap path on the last ``cheap = filters - raw`` channels of x0:
       ``cheap_op`` "conv1x1", "conv3x3" or "conv5x5" (conv, no bias, + BN:
       ``{name}_cheap_conv``, ``_bn``) or "identity".
    4. Mix (Eq. 11-12, ``mix=True``): concat[x0, every thin output] -> global
       average pool -> 1x1 conv -> BN -> ReLU -> 1x1 conv -> BN
       (``{name}_merge_*``), a per-channel offset added to the cheap features;
       then ReLU (``{name}_cheap_relu``).
    5. concat[thin output, cheap] (``{name}_concat``), then (``last_block``)
       the last block at full width (``{name}_end_*``).

    ``full_input=True`` follows Eq. 8-9 literally instead: the first thin
    block and a conv cheap op read all ``filters`` channels of x0 (``L'_2(Y_1)``,
    ``C(Y_1)``); the first thin block then has a projection shortcut. The
    paper's CIFAR ResNet56 numbers (Tables 11, 13, 14) are met this way, the
    RegNet and ResNet34 numbers with the default slices.

    ``cheap_op="none"`` (paper Table 13, "No"): no cheap path and no mix; the
    last thin block makes all ``filters`` channels itself.
    ``ghost_ratio=0`` builds the plain stage: ``depth`` blocks ``block_fn``
    (``{name}_<i>_*``, torchvision's ``layer1.0``).
    """
    thin_block_fn = thin_block_fn or block_fn
    if ghost_ratio == 0 and cheap_op in CHEAP_OPS:
        for i in range(depth):
            x = block_fn(x, filters, strides=strides if i == 0 else 1, name=f"{name}_{i}")
        return x
    thin_count, raw = _g_ghost_split(
        depth, filters, ghost_ratio, cheap_op, mix, last_block, thin_divisor
    )
    x0 = block_fn(x, filters, strides=strides, name=f"{name}_base")
    e = x0 if full_input else ChannelSlice(0, raw, name=f"{name}_raw_slice")(x0)
    thin_outputs = []
    for i in range(thin_count):
        out = filters if cheap_op == "none" and i == thin_count - 1 else raw
        e = thin_block_fn(e, out, strides=1, name=f"{name}_layers_{i}")
        thin_outputs.append(e)
    if cheap_op == "none":
        x = e
    else:
        c = _g_ghost_cheap_path(x0, raw, filters, cheap_op, full_input, name)
        if mix:
            c = _g_ghost_mix(c, [x0, *thin_outputs], filters - raw, name)
        c = layers.ReLU(name=f"{name}_cheap_relu")(c)
        x = layers.Concatenate(name=f"{name}_concat")([e, c])
    if last_block:
        x = block_fn(x, filters, strides=1, name=f"{name}_end")
    return x
