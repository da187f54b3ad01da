"""GhostNet for Keras 3: C-GhostNet, G-GhostNet and the other models of the GhostNets paper."""

from ghostnet_keras import blocks
from ghostnet_keras.features import feature_extractor, feature_layer_names
from ghostnet_keras.g_ghostnet import GGhostNet, GGhostNet050, GGhostNet100, GGhostNet130
from ghostnet_keras.ghostify import GhostifyReport, ghostify
from ghostnet_keras.ghostnet import GhostNet, GhostNet050, GhostNet100, GhostNet130
from ghostnet_keras.ghostnet_v2 import GhostNet100V2, GhostNet130V2, GhostNet160V2, GhostNetV2
from ghostnet_keras.ghostnet_v3 import (
    GhostNet050V3,
    GhostNet100V3,
    GhostNet130V3,
    GhostNet160V3,
    GhostNetV3,
    reparameterize,
)
from ghostnet_keras.imagenet import decode_predictions, preprocess_input
from ghostnet_keras.profiler import profile
from ghostnet_keras.registry import create_model, list_models
from ghostnet_keras.regnet import (
    GGhostRegNetX032,
    GGhostRegNetX040,
    GGhostRegNetX080,
    GGhostRegNetX160,
    RegNetX032,
    RegNetX040,
    RegNetX080,
    RegNetX160,
)
from ghostnet_keras.resnet import (
    GGhostResNet34,
    GGhostResNet56,
    GGhostResNet56NoMix,
    GhostResNet50S2,
    GhostResNet50S4,
    GhostResNet56,
    ResNet34,
    ResNet50,
    ResNet56,
)
from ghostnet_keras.vgg import ghost_vgg16_cifar, vgg16_cifar

__version__ = "0.1.0"

__all__ = [
    "GGhostNet",
    "GGhostNet050",
    "GGhostNet100",
    "GGhostNet130",
    "GGhostRegNetX032",
    "GGhostRegNetX040",
    "GGhostRegNetX080",
    "GGhostRegNetX160",
    "GGhostResNet34",
    "GGhostResNet56",
    "GGhostResNet56NoMix",
    "GhostResNet50S2",
    "GhostResNet50S4",
    "GhostResNet56",
    "RegNetX032",
    "RegNetX040",
    "RegNetX080",
    "RegNetX160",
    "ResNet34",
    "ResNet50",
    "ResNet56",
    "GhostNet",
    "GhostNet050",
    "GhostNet100",
    "GhostNet130",
    "GhostNetV2",
    "GhostNet100V2",
    "GhostNet130V2",
    "GhostNet160V2",
    "GhostNetV3",
    "GhostNet050V3",
    "GhostNet100V3",
    "GhostNet130V3",
    "GhostNet160V3",
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
    "reparameterize",
    "vgg16_cifar",
]
