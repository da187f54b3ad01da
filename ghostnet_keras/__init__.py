"""GhostNet for Keras 3: C-GhostNet, G-GhostNet and the other models of the GhostNets paper.

The public names load on first use (PEP 562): ``import ghostnet_keras`` and the light
submodules (``extras``, ``files``, ``constants``, ``cli``, ``catalog``) do not import
Keras, so that a command line can quiet TensorFlow's start-up lines before Keras loads it.
"""

import importlib
import importlib.util

from ghostnet_keras import catalog  # data only: no Keras

__version__ = "0.1.0"

# Public name -> the submodule that defines it ("blocks" is the submodule itself): the
# package's functions and the family functions here, every model's builder from its
# catalogue row (``ghostnet_keras.catalog.MODELS``).
_PUBLIC = {
    "blocks": "blocks",
    "feature_extractor": "features",
    "feature_layer_names": "features",
    "GGhostNet": "g_ghostnet",
    "GhostifyReport": "ghostifier",
    "ghostify": "ghostifier",
    "GhostNet": "ghostnet",
    "GhostNetV2": "ghostnet_v2",
    "GhostNetV3": "ghostnet_v3",
    "reparameterize": "ghostnet_v3",
    "decode_predictions": "imagenet",
    "preprocess_input": "imagenet",
    "profile": "profiler",
    "create_model": "registry",
    "list_models": "registry",
    **catalog.public_names(),
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
