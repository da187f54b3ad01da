"""GhostNet for Keras 3: C-GhostNet, G-GhostNet and the other models of the GhostNets paper.

The public names load on first use (PEP 562): ``import ghostnet_keras`` and the light
submodules (``extras``, ``files``, ``constants``, ``cli``) do not import Keras, so that a
command line can quiet TensorFlow's start-up lines before Keras loads it.
"""

import importlib
import importlib.util

__version__ = "0.1.0"

# Public name -> the submodule that defines it ("blocks" is the submodule itself).
_PUBLIC = {
    "blocks": "blocks",
    "feature_extractor": "features",
    "feature_layer_names": "features",
    "GGhostNet": "g_ghostnet",
    "GGhostNet050": "g_ghostnet",
    "GGhostNet100": "g_ghostnet",
    "GGhostNet130": "g_ghostnet",
    "GhostifyReport": "ghostifier",
    "ghostify": "ghostifier",
    "GhostNet": "ghostnet",
    "GhostNet050": "ghostnet",
    "GhostNet100": "ghostnet",
    "GhostNet130": "ghostnet",
    "GhostNetV2": "ghostnet_v2",
    "GhostNet100V2": "ghostnet_v2",
    "GhostNet130V2": "ghostnet_v2",
    "GhostNet160V2": "ghostnet_v2",
    "GhostNetV3": "ghostnet_v3",
    "GhostNet050V3": "ghostnet_v3",
    "GhostNet100V3": "ghostnet_v3",
    "GhostNet130V3": "ghostnet_v3",
    "GhostNet160V3": "ghostnet_v3",
    "reparameterize": "ghostnet_v3",
    "decode_predictions": "imagenet",
    "preprocess_input": "imagenet",
    "profile": "profiler",
    "create_model": "registry",
    "list_models": "registry",
    "GGhostRegNetX032": "regnet",
    "GGhostRegNetX040": "regnet",
    "GGhostRegNetX080": "regnet",
    "GGhostRegNetX160": "regnet",
    "RegNetX032": "regnet",
    "RegNetX040": "regnet",
    "RegNetX080": "regnet",
    "RegNetX160": "regnet",
    "GGhostResNet34": "resnet",
    "GGhostResNet56": "resnet",
    "GGhostResNet56NoMix": "resnet",
    "GhostResNet50S2": "resnet",
    "GhostResNet50S4": "resnet",
    "GhostResNet56": "resnet",
    "ResNet34": "resnet",
    "ResNet50": "resnet",
    "ResNet56": "resnet",
    "ghost_vgg16_cifar": "vgg",
    "vgg16_cifar": "vgg",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        # A submodule (`ghostnet_keras.pretrained`, ...), as when this file imported them all.
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = name
    loaded = importlib.import_module(f"{__name__}.{module}")
    value = loaded if module == name else getattr(loaded, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
