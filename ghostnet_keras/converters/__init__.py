"""Checkpoint converters: which published checkpoints map onto which Keras models.

Each converter is a :class:`ghostnet_keras.converters.core.Mapping`, named in
``CONVERTERS`` and imported only when used (nothing here imports a model module,
PyTorch or PaddlePaddle). The models a converter fills are those whose row in
:mod:`ghostnet_keras.catalog` names it:

- ``ghostnet``: C-GhostNet of the official PyTorch code and timm (``.pth``/``.safetensors``);
- ``paddleclas_ghostnet``: PaddleClas's GhostNet (``.pdparams``, the ``paddleclas`` variant);
- ``g_ghost_regnet``: G-Ghost RegNetX of the official code (huawei-noah/Efficient-AI-Backbones);
- ``ghostnet_v2v3``: GhostNetV2/V3 of the official code (Efficient-AI-Backbones) and timm,
  both GhostNetV3 forms (training and re-parameterised);
- ``torchvision_resnet``, ``torchvision_regnet``: torchvision's ResNet34/50, RegNetX;
- ``timm_regnet``: timm's RegNetX (pycls weights; RegNetX-4.0GF, which torchvision lacks).
"""

import importlib
import os

# converter name -> "module:attribute" of its Mapping.
CONVERTERS = {
    "ghostnet": "ghostnet_keras.converters.ghostnet:MAPPING",
    "paddleclas_ghostnet": "ghostnet_keras.converters.ghostnet:PADDLECLAS_MAPPING",
    "ghostnet_v2v3": "ghostnet_keras.converters.ghostnet_v2v3:MAPPING",
    "g_ghost_regnet": "ghostnet_keras.converters.regnet_resnet:G_GHOST_REGNET",
    "torchvision_resnet": "ghostnet_keras.converters.regnet_resnet:TORCHVISION_RESNET",
    "torchvision_regnet": "ghostnet_keras.converters.regnet_resnet:TORCHVISION_REGNET",
    "timm_regnet": "ghostnet_keras.converters.regnet_resnet:TIMM_REGNET",
}


def get(name):
    """The :class:`~ghostnet_keras.converters.core.Mapping` registered as ``name``."""
    if name not in CONVERTERS:
        raise ValueError(
            f"Unknown converter; known: {', '.join(CONVERTERS)}. Received: converter={name!r}"
        )
    module, attribute = CONVERTERS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def for_model(model_name, checkpoint=None):
    """The converters that fill ``model_name``; with ``checkpoint`` (a path), only those
    that read its file type (``.pdparams``: Paddle, anything else: PyTorch)."""
    found = [get(name) for name in CONVERTERS if model_name in get(name).models]
    if checkpoint is not None:
        reader = "paddle" if os.fspath(checkpoint).endswith(".pdparams") else "torch"
        found = [m for m in found if m.reader == reader]
    return found


def convertible_models():
    """Every registry name some converter fills, sorted."""
    return sorted({model for name in CONVERTERS for model in get(name).models})
