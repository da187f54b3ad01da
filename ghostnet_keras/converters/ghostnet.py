"""Name mappings for C-GhostNet: the official PyTorch code / timm, and PaddleClas.

Keras layer names (``ghostnet_keras.ghostnet``): ``stem_conv``/``stem_bn``, bottleneck
layers ``blocks_<stage>_<index>_<part>``, the last 1x1 conv ``blocks_9_conv``/``blocks_9_bn``,
the head ``head`` (a Dense layer on the pooled features; with ``head_bn`` in the
``paddleclas`` variant) and the ``classifier``.

- The official code and timm share one layout: ``blocks.<stage>.<index>.ghost1.primary_conv.0``
  and so on, the head a 1x1 conv ``conv_head`` with a bias.
- PaddleClas numbers the 16 bottlenecks flatly (``_ghostbottleneck_<n>``), wraps every
  conv + BN in a ``ConvBNLayer`` (``._conv``, ``._batch_norm``), has Linear layers in the
  squeeze-and-excitation (``se_block.squeeze``/``.excitation``) and a conv + BN head
  (``fc_0``) before the Linear classifier ``fc_1``.
"""

import re

from ghostnet_keras import catalog
from ghostnet_keras.converters.core import Mapping


def widths(converter):
    """``{registry name: width multiplier}`` of the models the catalogue says ``converter``
    fills; the width is in the name (``ghostnet_130``: 1.3x, ``ghostnetv3_050``: 0.5x)."""
    return {name: int(name.rsplit("_", 1)[1]) / 100 for name in catalog.converted_by(converter)}


WIDTHS = widths("ghostnet")

# Keras layer-name suffix inside a ghost bottleneck -> module path inside it (official code).
_BOTTLENECK_PARTS = {
    "ghost1_primary_conv": "ghost1.primary_conv.0",
    "ghost1_primary_bn": "ghost1.primary_conv.1",
    "ghost1_cheap_conv": "ghost1.cheap_operation.0",
    "ghost1_cheap_bn": "ghost1.cheap_operation.1",
    "dw_conv": "conv_dw",
    "dw_bn": "bn_dw",
    "se_reduce": "se.conv_reduce",
    "se_expand": "se.conv_expand",
    "ghost2_primary_conv": "ghost2.primary_conv.0",
    "ghost2_primary_bn": "ghost2.primary_conv.1",
    "ghost2_cheap_conv": "ghost2.cheap_operation.0",
    "ghost2_cheap_bn": "ghost2.cheap_operation.1",
    "shortcut_dw_conv": "shortcut.0",
    "shortcut_dw_bn": "shortcut.1",
    "shortcut_pw_conv": "shortcut.2",
    "shortcut_pw_bn": "shortcut.3",
}
# Layers outside the bottlenecks (official code).
_FIXED_LAYERS = {
    "stem_conv": "conv_stem",
    "stem_bn": "bn1",
    "head": "conv_head",  # a 1x1 conv on the pooled map in PyTorch, a Dense layer here
    "classifier": "classifier",
}
_BOTTLENECK_RE = re.compile(r"^blocks_(\d+)_(\d+)_(\w+)$")
_LAST_CONV_RE = re.compile(r"^blocks_(\d+)_(conv|bn)$")  # the 1x1 ConvBnAct after the stages


def torch_prefix(layer_name):
    """The official/timm module path holding the weights of the Keras layer ``layer_name``.

    ``blocks_6_3_se_reduce`` -> ``blocks.6.3.se.conv_reduce``, ``blocks_9_bn`` ->
    ``blocks.9.0.bn1``, ``head`` -> ``conv_head``. Raises ``KeyError`` for a layer
    that has no counterpart in the reference code.
    """
    if layer_name in _FIXED_LAYERS:
        return _FIXED_LAYERS[layer_name]
    match = _BOTTLENECK_RE.match(layer_name)
    if match and match.group(3) in _BOTTLENECK_PARTS:
        stage, index, part = match.groups()
        return f"blocks.{stage}.{index}.{_BOTTLENECK_PARTS[part]}"
    match = _LAST_CONV_RE.match(layer_name)
    if match:
        stage, kind = match.groups()
        return f"blocks.{stage}.0.{'conv' if kind == 'conv' else 'bn1'}"
    raise KeyError(f"No PyTorch counterpart for the Keras layer {layer_name!r}")


def guess_model(state_dict):
    """Names the C-GhostNet width an official/timm state dict looks like, or ``None``."""
    stem, last = state_dict.get("conv_stem.weight"), state_dict.get("blocks.9.0.conv.weight")
    return guess_width(stem, last)


def guess_width(stem, last, widths=WIDTHS):
    """The name in ``widths`` (``{name: width multiplier}``) whose stem conv has
    ``make_divisible(16 * width)`` and whose last conv has ``make_divisible(960 * width)``
    output channels, as the ``stem`` and ``last`` kernels have; ``None`` if none (or a kernel
    is missing). The stem and last widths of C-GhostNet, which GhostNetV2/V3 keep."""
    if stem is None or last is None:
        return None
    from ghostnet_keras.blocks import make_divisible

    for name, width in widths.items():
        if stem.shape[0] == make_divisible(16 * width) and last.shape[0] == make_divisible(
            960 * width
        ):
            return name
    return None


MAPPING = Mapping(
    name="ghostnet",
    title="the official C-GhostNet code or timm",
    models=tuple(WIDTHS),
    prefix=torch_prefix,
    head=("conv_head", "classifier"),
    conv_dense=("conv_head",),
    classifier="classifier.weight",
    guess=guess_model,
)

# PaddleClas: bottlenecks per Keras stage (the official grouping of the 16 bottlenecks of
# the paper's Table 1 into stages 0-8), to number them flatly.
_STAGE_SIZES = (1, 1, 1, 1, 1, 1, 5, 1, 4)
_STAGE_OFFSETS = tuple(sum(_STAGE_SIZES[:k]) for k in range(len(_STAGE_SIZES)))
_PADDLE_PARTS = {
    "ghost1_primary_conv": "ghost_module_1.primary_conv._conv",
    "ghost1_primary_bn": "ghost_module_1.primary_conv._batch_norm",
    "ghost1_cheap_conv": "ghost_module_1.cheap_operation._conv",
    "ghost1_cheap_bn": "ghost_module_1.cheap_operation._batch_norm",
    "dw_conv": "depthwise_conv._conv",
    "dw_bn": "depthwise_conv._batch_norm",
    "se_reduce": "se_block.squeeze",
    "se_expand": "se_block.excitation",
    "ghost2_primary_conv": "ghost_module_2.primary_conv._conv",
    "ghost2_primary_bn": "ghost_module_2.primary_conv._batch_norm",
    "ghost2_cheap_conv": "ghost_module_2.cheap_operation._conv",
    "ghost2_cheap_bn": "ghost_module_2.cheap_operation._batch_norm",
    "shortcut_dw_conv": "shortcut_depthwise._conv",
    "shortcut_dw_bn": "shortcut_depthwise._batch_norm",
    "shortcut_pw_conv": "shortcut_conv._conv",
    "shortcut_pw_bn": "shortcut_conv._batch_norm",
}
_PADDLE_FIXED = {
    "stem_conv": "conv1._conv",
    "stem_bn": "conv1._batch_norm",
    "blocks_9_conv": "conv_last._conv",
    "blocks_9_bn": "conv_last._batch_norm",
    "head": "fc_0._conv",
    "head_bn": "fc_0._batch_norm",
    "classifier": "fc_1",
}


def paddle_prefix(layer_name):
    """The PaddleClas GhostNet sublayer of the Keras layer ``layer_name`` (structured name):
    ``blocks_6_3_se_reduce`` -> ``_ghostbottleneck_9.se_block.squeeze``."""
    if layer_name in _PADDLE_FIXED:
        return _PADDLE_FIXED[layer_name]
    match = _BOTTLENECK_RE.match(layer_name)
    if match and match.group(3) in _PADDLE_PARTS:
        stage, index, part = match.groups()
        if int(stage) < len(_STAGE_SIZES) and int(index) < _STAGE_SIZES[int(stage)]:
            n = _STAGE_OFFSETS[int(stage)] + int(index)
            return f"_ghostbottleneck_{n}.{_PADDLE_PARTS[part]}"
    raise KeyError(f"No PaddleClas counterpart for the Keras layer {layer_name!r}")


def guess_paddle_model(state_dict):
    """Names the GhostNet width a PaddleClas state dict looks like, or ``None``."""
    return guess_width(
        state_dict.get("conv1._conv.weight"),
        state_dict.get("conv_last._conv.weight"),
        widths("paddleclas_ghostnet"),
    )


PADDLECLAS_MAPPING = Mapping(
    name="paddleclas_ghostnet",
    title="PaddleClas's GhostNet",
    models=catalog.converted_by("paddleclas_ghostnet"),
    prefix=paddle_prefix,
    head=("fc_0", "fc_1"),
    layout="paddle",
    reader="paddle",
    conv_dense=("fc_0._conv",),
    linear_conv=tuple(
        f"_ghostbottleneck_{n}.se_block.{part}"
        for n in range(16)
        for part in ("squeeze", "excitation")
    ),
    classifier="fc_1.weight",
    guess=guess_paddle_model,
    variant="paddleclas",
)
