"""Maps timm's (and the official code's) GhostNetV2 / GhostNetV3 state dicts onto Keras models.

The layer names of :mod:`ghostnet_keras.ghostnet_v2` and :mod:`ghostnet_keras.ghostnet_v3`
mirror timm's module paths; :func:`torch_prefix` spells the mapping out for the layers that
C-GhostNet does not have, and defers to :func:`ghostnet_keras.convert_weights.torch_prefix`
for the others. Both GhostNetV3 forms convert: the training form (``primary_rpr_conv.<i>``,
``cheap_rpr_scale``, ``dw_rpr_conv.<i>``...) and the deployment form that timm's
``reparameterize_model`` leaves (``primary_conv.0`` with a bias, ``conv_dw`` with a bias).

Example (the checkpoint read with :func:`ghostnet_keras.convert_weights.read_state_dict`)::

    model = ghostnet_keras.create_model("ghostnetv2_100", weights=None)
    convert_state_dict(state_dict, model)
"""

import re

from ghostnet_keras import convert_weights

SUPPORTED_MODELS = (
    "ghostnetv2_100",
    "ghostnetv2_130",
    "ghostnetv2_160",
    "ghostnetv3_050",
    "ghostnetv3_100",
    "ghostnetv3_130",
    "ghostnetv3_160",
)

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


def _block_path(block):
    return block.replace("_", ".")  # blocks_3_0 -> blocks.3.0


def torch_prefix(layer_name):
    """The timm module path of a GhostNetV2/V3 Keras layer.

    ``blocks_3_0_ghost1_short_hconv`` -> ``blocks.3.0.ghost1.short_conv.2``,
    ``blocks_3_0_ghost1_primary_rpr_conv_1_bn`` -> ``blocks.3.0.ghost1.primary_rpr_conv.1.bn1``,
    ``blocks_3_0_dw_rpr_scale_conv`` -> ``blocks.3.0.dw_rpr_scale.conv``; the C-GhostNet
    layers as :func:`ghostnet_keras.convert_weights.torch_prefix`. ``KeyError`` otherwise.
    """
    match = _BOTTLENECK_RE.match(layer_name)
    if match:
        block, part = _block_path(match.group(1)), match.group(2)
        short = _SHORT_RE.match(part)
        if short and short.group(2) in _SHORT_PARTS:
            return f"{block}.{short.group(1)}.short_conv.{_SHORT_PARTS[short.group(2)]}"
        rep = _REP_RE.match(part)
        if rep:
            owner, branch, index, kind = rep.groups()
            owner = owner.replace("_", ".")  # ghost1_primary -> ghost1.primary
            branch = f"rpr_conv.{index}" if index is not None else "rpr_scale"
            return f"{block}.{owner}_{branch}.{'conv' if kind == 'conv' else 'bn1'}"
        skip = _SKIP_RE.match(part)
        if skip:
            return f"{block}.{skip.group(1)}.cheap_rpr_skip"
    return convert_weights.torch_prefix(layer_name)


def normalize_state_dict(state_dict):
    """timm's key names for an official GhostNetV2/V3 checkpoint (a new dict; timm's as is).

    The official GhostNetV3 code names the BN of its conv + BN branches ``bn`` where timm
    names it ``bn1`` (``primary_rpr_conv.0.bn.weight``), and its released files carry
    ``total_ops``/``total_params`` counters of a FLOP profiler: renamed and dropped, as
    timm's ``checkpoint_filter_fn`` does.
    """
    out = {}
    for key, value in state_dict.items():
        if "total_ops" in key or "total_params" in key:
            continue
        if "_rpr_" in key and ".bn." in key:
            key = key.replace(".bn.", ".bn1.")
        out[key] = value
    return out


def build_model(model_name, include_top=True, classes=1000):
    """The Keras model (training form for GhostNetV3) a checkpoint of ``model_name`` fills."""
    if model_name not in SUPPORTED_MODELS:
        raise ValueError(
            f"Cannot convert weights for {model_name!r}; supported models: "
            f"{', '.join(SUPPORTED_MODELS)}. Received: model={model_name!r}"
        )
    from ghostnet_keras import registry

    return registry.create_model(
        model_name, include_top=include_top, weights=None, classes=classes, name=model_name
    )


def convert_state_dict(state_dict, model, model_name=None, include_top=True, source="checkpoint"):
    """Assigns a timm GhostNetV2/V3 ``state_dict`` (name -> array) to the Keras ``model``.

    As :func:`ghostnet_keras.convert_weights.convert_state_dict`: every Keras weight is
    assigned exactly once and every tensor is used (``num_batches_tracked`` aside, and the
    head's when ``include_top`` is false), else a ``ValueError`` lists the mismatches.
    Official checkpoints' key names are mapped first (:func:`normalize_state_dict`).
    A GhostNetV3 training-form state dict goes into a training-form model, a deployed one
    (timm's ``reparameterize_model``) into the model :func:`ghostnet_keras.reparameterize`
    returns. Returns the number of tensors assigned.
    """
    return convert_weights.convert_state_dict(
        normalize_state_dict(state_dict),
        model,
        model_name,
        include_top,
        source,
        prefix_fn=torch_prefix,
    )
