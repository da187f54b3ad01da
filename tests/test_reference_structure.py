"""Our C-GhostNet holds exactly the tensors of the reference PyTorch model, one to one.

Layer names mirror the reference module paths; this test spells the correspondence out
independently of the weight converter and checks that it is a bijection onto the reference
state dict (``num_batches_tracked`` aside) with equal shapes after the layout transposition,
so that, taken in the reference order, the two weight lists match shape for shape.
"""

import re

import keras
import numpy as np
import pytest
from torch_reference import import_torch_timm

import ghostnet_keras

_, timm = import_torch_timm()  # skips the module with a reason when timm is not installed

MODULES = [  # (our layer-name pattern, reference module path)
    (r"stem_conv", "conv_stem"),
    (r"stem_bn", "bn1"),
    (r"blocks_9_conv", "blocks.9.0.conv"),
    (r"blocks_9_bn", "blocks.9.0.bn1"),
    (r"head", "conv_head"),
    (r"classifier", "classifier"),
    (r"blocks_(\d+)_(\d+)_(ghost[12])_primary_conv", r"blocks.\1.\2.\3.primary_conv.0"),
    (r"blocks_(\d+)_(\d+)_(ghost[12])_primary_bn", r"blocks.\1.\2.\3.primary_conv.1"),
    (r"blocks_(\d+)_(\d+)_(ghost[12])_cheap_conv", r"blocks.\1.\2.\3.cheap_operation.0"),
    (r"blocks_(\d+)_(\d+)_(ghost[12])_cheap_bn", r"blocks.\1.\2.\3.cheap_operation.1"),
    (r"blocks_(\d+)_(\d+)_dw_conv", r"blocks.\1.\2.conv_dw"),
    (r"blocks_(\d+)_(\d+)_dw_bn", r"blocks.\1.\2.bn_dw"),
    (r"blocks_(\d+)_(\d+)_se_reduce", r"blocks.\1.\2.se.conv_reduce"),
    (r"blocks_(\d+)_(\d+)_se_expand", r"blocks.\1.\2.se.conv_expand"),
    (r"blocks_(\d+)_(\d+)_shortcut_dw_conv", r"blocks.\1.\2.shortcut.0"),
    (r"blocks_(\d+)_(\d+)_shortcut_dw_bn", r"blocks.\1.\2.shortcut.1"),
    (r"blocks_(\d+)_(\d+)_shortcut_pw_conv", r"blocks.\1.\2.shortcut.2"),
    (r"blocks_(\d+)_(\d+)_shortcut_pw_bn", r"blocks.\1.\2.shortcut.3"),
]
TENSORS = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _reference_key(layer_name, weight_name):
    for pattern, module in MODULES:
        if re.fullmatch(pattern, layer_name):
            return re.sub(f"^{pattern}$", module, layer_name) + "." + TENSORS[weight_name]
    raise AssertionError(f"no reference module for layer {layer_name}")


def _torch_layout(layer, weight):
    shape = tuple(weight.shape)
    if weight.name != "kernel":
        return shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = shape
        return (channels * multiplier, 1, kh, kw)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    if isinstance(layer, keras.layers.Dense):
        cin, cout = shape  # the reference head is a 1x1 conv (O, I, 1, 1), its classifier (O, I)
        return (cout, cin, 1, 1) if layer.name == "head" else (cout, cin)
    return shape


@pytest.mark.parametrize("name", ["ghostnet_050", "ghostnet_100", "ghostnet_130"])
def test_weights_map_one_to_one_onto_reference_state_dict(name):
    reference = {
        key: tuple(t.shape)
        for key, t in timm.create_model(name, pretrained=False).state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
    model = ghostnet_keras.create_model(name)
    ours = {}
    for layer in model.layers:
        if layer.name == "preprocessing":
            continue  # normalisation constants: the reference does this outside the model
        for weight in layer.weights:
            key = _reference_key(layer.name, weight.name)
            assert key not in ours, f"two Keras weights map to {key}"
            ours[key] = _torch_layout(layer, weight)
    assert set(ours) == set(reference)
    # In the reference order, the two lists of shapes are equal.
    assert [ours[key] for key in reference] == list(reference.values())
    if name == "ghostnet_100":
        assert len(reference) == 432
    trainable = sum(int(np.prod(s)) for k, s in reference.items() if "running" not in k)
    assert trainable == ghostnet_keras.profile(model)["params"]
