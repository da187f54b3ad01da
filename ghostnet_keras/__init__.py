"""GhostNet for Keras 3: C-GhostNet, G-GhostNet and the other models of the GhostNets paper."""

from ghostnet_keras import blocks
from ghostnet_keras.features import feature_extractor, feature_layer_names
from ghostnet_keras.ghostify import GhostifyReport, ghostify
from ghostnet_keras.ghostnet import GhostNet, GhostNet050, GhostNet100, GhostNet130
from ghostnet_keras.imagenet import decode_predictions, preprocess_input
from ghostnet_keras.profiler import profile
from ghostnet_keras.registry import create_model, list_models
from ghostnet_keras.vgg import ghost_vgg16_cifar, vgg16_cifar

__version__ = "0.1.0"

__all__ = [
    "GhostNet",
    "GhostNet050",
    "GhostNet100",
    "GhostNet130",
    "GhostifyReport",
    "blocks",
    "create_model",
    "decode_predictions",
    "feature_extractor",
    "feature_layer_names",
    "ghost_vgg16_cifar",
    "ghostify",
    "list_models",
    "preprocess_input",
    "profile",
    "vgg16_cifar",
]
