"""Name mapping for GhostNetV2 and GhostNetV3: the official code (huawei-noah
Efficient-AI-Backbones) and timm.

The layer names of :mod:`ghostnet_keras.ghostnet_v2` and :mod:`ghostnet_keras.ghostnet_v3`
mirror timm's module paths; :func:`torch_prefix` spells the mapping out for the layers that
C-GhostNet does not have and defers to :func:`ghostnet_keras.converters.ghostnet.torch_prefix`
for the others. Both GhostNetV3 forms convert: the training form (``primary_rpr_conv.<i>``,
``cheap_rpr_scale``, ``dw_rpr_conv.<i>``...) into the built model, and the deployment form
that timm's ``reparameterize_model`` leaves (``primary_conv.0`` with a bias, ``conv_dw`` with
a bias) into the model :func:`ghostnet_keras.reparameterize` returns.

The official GhostNetV3 files name the BatchNorm of a conv + BN branch ``bn`` where timm
names it ``bn1`` and carry a FLOP profiler's ``total_ops``/``total_params`` counters:
:func:`normalize_state_dict` renames and drops them (as timm's ``checkpoint_filter_fn``).
"""

import re

from ghostnet_keras.converters import ghostnet
from ghostnet_keras.converters.core import Mapping

# Registry name (``ghostnetv<version>_<100 x width>``) -> (version, width), of the catalogue.
WIDTHS = {
    name: (int(name[len("ghostnetv")]), width)
    for name, width in ghostnet.widths("ghostnet_v2v3").items()
}

# GhostNetV2 DFC attention: Keras part -> index in timm's ``short_conv`` Sequential.
_SHORT_PARTS = {
    "short_conv": 0,
    "short_bn": 1,
    "short_hconv": 2,
    "short_hbn": 3,
    "short_vconv": 4,
    "short_vbn": 5,
}
_BOTTLENECK_RE = re.compile(r"^(blocks_\d+_\d+)_(\w+)$")
_SHORT_RE = re.compile(r"^(ghost[12])_(short_\w+)$")
# GhostNetV3 re-parameterisable branches: {ghost1_primary, ghost2_cheap, dw}_rpr_...
_REP_RE = re.compile(r"^((?:ghost[12]_(?:primary|cheap))|dw)_rpr_(conv_(\d+)|scale)_(conv|bn)$")
_SKIP_RE = re.compile(r"^(ghost[12])_cheap_rpr_skip$")
# Tensors of a FLOP profiler in the official GhostNetV3 files.
_PROFILER_KEYS = ("total_ops", "total_params")


def torch_prefix(layer_name):
    """The timm (and official) module path of a GhostNetV2/V3 Keras layer.

    ``blocks_3_0_ghost1_short_hconv`` -> ``blocks.3.0.ghost1.short_conv.2``,
    ``blocks_3_0_ghost1_primary_rpr_conv_1_bn`` -> ``blocks.3.0.ghost1.primary_rpr_conv.1.bn1``,
    ``blocks_3_0_dw_rpr_scale_conv`` -> ``blocks.3.0.dw_rpr_scale.conv``; the C-GhostNet
    layers as :func:`ghostnet_keras.converters.ghostnet.torch_prefix`. ``KeyError`` otherwise.
    """
    match = _BOTTLENECK_RE.match(layer_name)
    if match:
        block, part = match.group(1).replace("_", "."), match.group(2)  # blocks.3.0
        short = _SHORT_RE.match(part)
        if short and short.group(2) in _SHORT_PARTS:
            return f"{block}.{short.group(1)}.short_conv.{_SHORT_PARTS[short.group(2)]}"
        rep = _REP_RE.match(part)
        if rep:
            owner, _, index, kind = rep.groups()
            owner = owner.replace("_", ".")  # ghost1_primary -> ghost1.primary
            branch = f"rpr_conv.{index}" if index is not None else "rpr_scale"
            return f"{block}.{owner}_{branch}.{'conv' if kind == 'conv' else 'bn1'}"
        skip = _SKIP_RE.match(part)
        if skip:
            return f"{block}.{skip.group(1)}.cheap_rpr_skip"
    return ghostnet.torch_prefix(layer_name)


def normalize_state_dict(state_dict):
    """timm's key names for an official GhostNetV2/V3 state dict (a new dict; timm's as is)."""
    out = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in _PROFILER_KEYS:
            continue
        if "_rpr_" in key and ".bn." in key:
            key = key.replace(".bn.", ".bn1.")
        out[key] = value
    return out


def guess_model(state_dict):
    """Names the GhostNetV2/V3 model a (normalized) state dict looks like, or ``None``.

    The version shows in the tensors (DFC attention: ``short_conv``; V3's re-parameterisable
    branches: ``_rpr_``, a deployed V3 has neither, and is taken for V2 only if it has the
    DFC attention), the width in the stem's and the last conv's channels.
    """
    version = 3 if any("_rpr_" in key for key in state_dict) else 2
    if version == 2 and not any(".short_conv." in key for key in state_dict):
        return None
    return ghostnet.guess_width(
        state_dict.get("conv_stem.weight"),
        state_dict.get("blocks.9.0.conv.weight"),
        {name: width for name, (v, width) in WIDTHS.items() if v == version},
    )


MAPPING = Mapping(
    name="ghostnet_v2v3",
    title="the official GhostNetV2/V3 code or timm",
    models=tuple(WIDTHS),
    prefix=torch_prefix,
    head=("conv_head", "classifier"),
    conv_dense=("conv_head",),
    classifier="classifier.weight",
    guess=guess_model,
    normalize=normalize_state_dict,
)
