"""Name mappings for the ResNet / RegNetX family: the official G-Ghost RegNet code,
torchvision's ResNet and RegNetX, and timm's RegNetX.

Keras layer names (``ghostnet_keras.regnet`` and ``ghostnet_keras.resnet``) follow the
official module paths: a stem (``stem_conv``/``stem_bn``, ``conv1``/``conv1_bn`` in the
ResNets), blocks ``layer<k>_<i>_conv<n>`` with ``_bn`` and ``_downsample(_bn)`` in plain
stages, ``layer<k>_base_*``/``_layers_<i>_*``/``_end_*`` and the ``merge``/``cheap``
branches in G-Ghost stages, and the ``classifier``. Each code base names the same modules
differently; every mapping below is a table from those parts to the checkpoint's names.
"""

import re

from ghostnet_keras import catalog
from ghostnet_keras.converters.core import Mapping

_BLOCK_RE = re.compile(
    r"^layer(\d+)_(\d+|base|end|layers_\d+)_(conv\d|conv\d_bn|downsample|downsample_bn)$"
)
_STAGE_RE = re.compile(
    r"^layer(\d+)_(merge_conv1|merge_bn1|merge_conv2|merge_bn2|cheap_conv|cheap_bn)$"
)


def _parse(layer_name):
    """``(stage, block, part)`` of a block layer, ``(stage, None, part)`` of a G-Ghost
    stage's merge/cheap layer; ``KeyError`` otherwise."""
    match = _BLOCK_RE.match(layer_name)
    if match:
        stage, block, part = match.groups()
        return int(stage), block, part
    match = _STAGE_RE.match(layer_name)
    if match:
        return int(match.group(1)), None, match.group(2)
    raise KeyError(layer_name)


# Block part -> module inside the block, per code base.
_OFFICIAL_PARTS = {
    "conv1": "conv1",
    "conv1_bn": "bn1",
    "conv2": "conv2",
    "conv2_bn": "bn2",
    "conv3": "conv3",
    "conv3_bn": "bn3",
    "downsample": "downsample.0",
    "downsample_bn": "downsample.1",
}
_TORCHVISION_REGNET_PARTS = {
    "conv1": "f.a.0",
    "conv1_bn": "f.a.1",
    "conv2": "f.b.0",
    "conv2_bn": "f.b.1",
    "conv3": "f.c.0",
    "conv3_bn": "f.c.1",
    "downsample": "proj.0",
    "downsample_bn": "proj.1",
}
_TIMM_REGNET_PARTS = {
    "conv1": "conv1.conv",
    "conv1_bn": "conv1.bn",
    "conv2": "conv2.conv",
    "conv2_bn": "conv2.bn",
    "conv3": "conv3.conv",
    "conv3_bn": "conv3.bn",
    "downsample": "downsample.conv",
    "downsample_bn": "downsample.bn",
}
# G-Ghost stage (official code): merge = Sequential(pool, conv, bn, relu, conv, bn),
# cheap = Sequential(conv, bn).
_OFFICIAL_STAGE_PARTS = {
    "merge_conv1": "merge.1",
    "merge_bn1": "merge.2",
    "merge_conv2": "merge.4",
    "merge_bn2": "merge.5",
    "cheap_conv": "cheap.0",
    "cheap_bn": "cheap.1",
}


def _g_ghost_regnet_prefix(layer_name):
    fixed = {"stem_conv": "conv1", "stem_bn": "bn1", "classifier": "fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    stage, block, part = _parse(layer_name)
    if block is None:
        return f"layer{stage}.{_OFFICIAL_STAGE_PARTS[part]}"
    return f"layer{stage}.{block.replace('_', '.')}.{_OFFICIAL_PARTS[part]}"


def _plain_block(layer_name):
    stage, block, part = _parse(layer_name)
    if block is None or not block.isdigit():
        raise KeyError(layer_name)  # a G-Ghost stage: no counterpart in the plain models
    return stage, int(block), part


def _torchvision_resnet_prefix(layer_name):
    fixed = {"conv1": "conv1", "conv1_bn": "bn1", "classifier": "fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    stage, block, part = _plain_block(layer_name)
    return f"layer{stage}.{block}.{_OFFICIAL_PARTS[part]}"


def _torchvision_regnet_prefix(layer_name):
    fixed = {"stem_conv": "stem.0", "stem_bn": "stem.1", "classifier": "fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    stage, block, part = _plain_block(layer_name)
    return f"trunk_output.block{stage}.block{stage}-{block}.{_TORCHVISION_REGNET_PARTS[part]}"


def _timm_regnet_prefix(layer_name):
    fixed = {"stem_conv": "stem.conv", "stem_bn": "stem.bn", "classifier": "head.fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    stage, block, part = _plain_block(layer_name)
    return f"s{stage}.b{block + 1}.{_TIMM_REGNET_PARTS[part]}"


def _guess_by(widths, first_key, last_conv_suffix):
    """A guess function: the model whose stage-1 width (``first_key``'s output channels)
    and last-stage width (the widest conv ending in ``last_conv_suffix``) match."""

    def guess(state_dict):
        first = state_dict.get(first_key)
        outs = [
            v.shape[0]
            for k, v in state_dict.items()
            if k.endswith(last_conv_suffix) and getattr(v, "ndim", 0) == 4
        ]
        if first is None or not outs:
            return None
        for name, signature in widths.items():
            if signature == (first.shape[0], max(outs)):
                return name
        return None

    return guess


# Stage-1 and stage-4 widths of the RegNetX configs (paper Table 18 / pycls).
_REGNETX_WIDTHS = {"032": (96, 1008), "040": (80, 1360), "080": (80, 1920), "160": (256, 2048)}


def _regnetx_widths(converter):
    """``{registry name: (stage-1, stage-4 width)}`` of the models ``converter`` fills (the
    config is the name's suffix: ``regnetx_032``)."""
    return {name: _REGNETX_WIDTHS[name[-3:]] for name in catalog.converted_by(converter)}


G_GHOST_REGNET = Mapping(
    name="g_ghost_regnet",
    title="the official G-Ghost RegNet code (huawei-noah/Efficient-AI-Backbones)",
    models=catalog.converted_by("g_ghost_regnet"),
    prefix=_g_ghost_regnet_prefix,
    head=("fc",),
    guess=_guess_by(
        _regnetx_widths("g_ghost_regnet"),
        "layer1.0.conv3.weight",
        "conv3.weight",
    ),
)
TORCHVISION_RESNET = Mapping(
    name="torchvision_resnet",
    title="torchvision's ResNet",
    models=catalog.converted_by("torchvision_resnet"),
    prefix=_torchvision_resnet_prefix,
    head=("fc",),
    guess=lambda sd: (
        None
        if "layer4.0.conv1.weight" not in sd
        else "resnet50"
        if "layer4.0.conv3.weight" in sd
        else "resnet34"
    ),
)
TORCHVISION_REGNET = Mapping(
    name="torchvision_regnet",
    title="torchvision's RegNetX",
    models=catalog.converted_by("torchvision_regnet"),
    prefix=_torchvision_regnet_prefix,
    head=("fc",),
    guess=_guess_by(
        _regnetx_widths("torchvision_regnet"),
        "trunk_output.block1.block1-0.f.c.0.weight",
        "f.c.0.weight",
    ),
)
TIMM_REGNET = Mapping(
    name="timm_regnet",
    title="timm's RegNetX (pycls weights)",
    models=catalog.converted_by("timm_regnet"),
    prefix=_timm_regnet_prefix,
    head=("head.fc",),
    classifier="head.fc.weight",
    guess=_guess_by(
        _regnetx_widths("timm_regnet"),
        "s1.b1.conv3.conv.weight",
        "conv3.conv.weight",
    ),
)
