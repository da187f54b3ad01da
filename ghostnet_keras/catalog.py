"""The models' catalogue: every registered model and its published weights, as data.

One :class:`Model` row per registry name says where the model is defined (its family module
and the public name of its builder), which checkpoint converters fill it and which ImageNet
weights are published for it (a :class:`PretrainedWeights` entry, or a dict ``{tag: entry}``
whose ``""`` tag is the default). Everything else derives from this table: the package's
public names (``ghostnet_keras.__init__``), the modules the registry imports, each
converter's model list (``ghostnet_keras.converters``) and the weights listing
(``ghostnet_keras.pretrained``). Registering a builder (``registry.register_model``, which
``skeleton.variant`` calls) checks it against its row, so a model cannot be registered
without one, nor under another module or name.

This module is the bottom of the models layer: it imports no Keras, downloads nothing and
builds nothing, so that ``import ghostnet_keras``, the command lines' argument parsers and
the weights listing can read it before any backend loads.
"""

import dataclasses
import os
import re
import urllib.parse

from ghostnet_keras.constants import CROP_FRACTION, IMAGENET_MEAN, IMAGENET_STD


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """The published ImageNet weights of one model.

    Attributes:
        url: the checkpoint file of the release (PyTorch ``.pth`` or PaddlePaddle
            ``.pdparams``).
        sha256: its SHA-256 digest, in full or a prefix of at least 8 hex digits, or
            ``None`` when none is known. A file name of the PyTorch hub form
            ``name-<hex>.pth`` carries such a prefix too, and is checked as well.
        top1: the ImageNet-1k top-1 accuracy (%) its authors report.
        converter: the key of ``ghostnet_keras.converters.CONVERTERS`` that maps it.
        variant: the builder variant the weights need (``None``: the default network).
        source: who publishes it, for docs and listings.
        mean, std: the input normalisation the weights were trained with (RGB, [0, 1]).
        crop_fraction: the evaluation centre crop (image side / resize side).
        input_size: the evaluation image side.
    """

    url: str
    sha256: str | None = None
    top1: float | None = None
    converter: str = "ghostnet"
    variant: str | None = None
    source: str = ""
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_fraction: float = CROP_FRACTION
    input_size: int = 224

    @property
    def file_name(self):
        """The name of the downloaded file in the cache and under a mirror origin: the URL's
        file name; for a Hugging Face hub URL (``.../<repo>/resolve/<rev>/<file>``, whose
        file names are generic) ``<repo>-<file>``."""
        path = urllib.parse.urlsplit(self.url).path
        parts = path.strip("/").split("/")
        if "resolve" in parts and parts.index("resolve") >= 1:
            return f"{parts[parts.index('resolve') - 1]}-{parts[-1]}"
        return os.path.basename(path)

    @property
    def expected_hashes(self):
        """The SHA-256 digests or prefixes the downloaded file must match."""
        hashes = [self.sha256.lower()] if self.sha256 else []
        match = re.search(r"-([0-9a-f]{8,64})\.[^.]+$", self.file_name)
        if match:
            hashes.append(match.group(1))
        return hashes


@dataclasses.dataclass(frozen=True)
class Model:
    """One registered model.

    Attributes:
        module: its family module, relative to the package (``"ghostnet"``).
        public: the name of its builder, exported as ``ghostnet_keras.<public>``.
        converters: the keys of ``ghostnet_keras.converters.CONVERTERS`` whose checkpoints
            convert into it.
        weights: its published ImageNet weights: ``None``, a :class:`PretrainedWeights`, or
            a dict ``{tag: entry}`` (``""``: the default, the others ``name.tag``).
    """

    module: str
    public: str
    converters: tuple = ()
    weights: PretrainedWeights | dict | None = None


# Where the published checkpoints are (docs/pretrained-weights.md).
# PaddleClas trained C-GhostNet 0.5x and 1.3x (and an SSLD-distilled 1.3x) in its variant.
PADDLECLAS = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph"
# Huawei's release page of GhostNetV2/V3 and G-Ghost RegNet (no digest is published).
EFFICIENT_AI_BACKBONES = "https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download"
# torchvision's IMAGENET1K_V1 checkpoints, whose file names carry SHA-256 prefixes.
TORCHVISION_MODELS = "https://download.pytorch.org/models"


def _paddleclas(file_name, top1, source="PaddleClas"):
    return PretrainedWeights(
        f"{PADDLECLAS}/{file_name}",
        top1=top1,
        converter="paddleclas_ghostnet",
        variant="paddleclas",
        source=source,
    )


def efficient_ai_backbones(path, top1, converter):
    """The entry of a checkpoint published on Huawei's Efficient-AI-Backbones release page
    (``path``: ``<tag>/<file>``); no digest is published for these files."""
    return PretrainedWeights(
        f"{EFFICIENT_AI_BACKBONES}/{path}",
        top1=top1,
        converter=converter,
        source="official release (huawei-noah/Efficient-AI-Backbones)",
    )


def _g_ghost_regnet(file_name, top1):
    return efficient_ai_backbones(f"g_ghost_regnet/{file_name}", top1, "g_ghost_regnet")


def _v2v3(path, top1):
    return efficient_ai_backbones(path, top1, "ghostnet_v2v3")


def _torchvision(file_name, top1, converter):
    return PretrainedWeights(
        f"{TORCHVISION_MODELS}/{file_name}",
        top1=top1,
        converter=converter,
        source="torchvision (IMAGENET1K_V1)",
    )


# C-GhostNet's checkpoints: the official code / timm (.pth) and PaddleClas (.pdparams).
_GHOSTNET = ("ghostnet", "paddleclas_ghostnet")
# GhostNetV2/V3: the official releases, whose URLs timm's configs name (timm's `*.in1k` files
# hold the same tensors); top-1 as the authors report. The GhostNetV3 file is the training
# form and also holds EMA weights; the converter reads `state_dict`, as timm does.
_V2V3 = ("ghostnet_v2v3",)
# RegNetX: torchvision (3.2, 8.0, 16.0GF) and timm (pycls weights, every size).
_REGNETX = ("torchvision_regnet", "timm_regnet")

MODELS = {
    # C-GhostNet (paper Table 1); the official release is of 1.0x only.
    "ghostnet_050": Model(
        "ghostnet",
        "GhostNet050",
        _GHOSTNET,
        _paddleclas("GhostNet_x0_5_pretrained.pdparams", 66.8),
    ),
    "ghostnet_100": Model(
        "ghostnet",
        "GhostNet100",
        _GHOSTNET,
        # The URL timm's ghostnet_100 config names; timm's ghostnet_100.in1k holds the same.
        PretrainedWeights(
            "https://github.com/huawei-noah/CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth",
            top1=73.98,
            converter="ghostnet",
            source="official release (huawei-noah/CV-backbones)",
        ),
    ),
    "ghostnet_130": Model(
        "ghostnet",
        "GhostNet130",
        _GHOSTNET,
        {
            "": _paddleclas("GhostNet_x1_3_pretrained.pdparams", 75.7),
            "ssld": _paddleclas(
                "GhostNet_x1_3_ssld_pretrained.pdparams", 79.4, "PaddleClas (SSLD distillation)"
            ),
        },
    ),
    # GhostNetV2 and GhostNetV3.
    "ghostnetv2_100": Model(
        "ghostnet_v2",
        "GhostNet100V2",
        _V2V3,
        _v2v3("GhostNetV2/ck_ghostnetv2_10.pth.tar", 75.3),
    ),
    "ghostnetv2_130": Model(
        "ghostnet_v2",
        "GhostNet130V2",
        _V2V3,
        _v2v3("GhostNetV2/ck_ghostnetv2_13.pth.tar", 76.9),
    ),
    "ghostnetv2_160": Model(
        "ghostnet_v2",
        "GhostNet160V2",
        _V2V3,
        _v2v3("GhostNetV2/ck_ghostnetv2_16.pth.tar", 77.8),
    ),
    "ghostnetv3_050": Model("ghostnet_v3", "GhostNet050V3", _V2V3),
    "ghostnetv3_100": Model(
        "ghostnet_v3",
        "GhostNet100V3",
        _V2V3,
        _v2v3("GhostNetV3/ghostnetv3-1.0.pth.tar", 77.1),
    ),
    "ghostnetv3_130": Model("ghostnet_v3", "GhostNet130V3", _V2V3),
    "ghostnetv3_160": Model("ghostnet_v3", "GhostNet160V3", _V2V3),
    # G-GhostNet (built from the paper alone; no weights, no reference code).
    "g_ghostnet_050": Model("g_ghostnet", "GGhostNet050"),
    "g_ghostnet_100": Model("g_ghostnet", "GGhostNet100"),
    "g_ghostnet_130": Model("g_ghostnet", "GGhostNet130"),
    # G-Ghost RegNetX: the official release (tag g_ghost_regnet; top-1 in the file names).
    "g_ghost_regnetx_032": Model(
        "regnet",
        "GGhostRegNetX032",
        ("g_ghost_regnet",),
        _g_ghost_regnet("g_ghost_regnet_3.2g_77.8.pth", 77.8),
    ),
    "g_ghost_regnetx_040": Model(
        "regnet",
        "GGhostRegNetX040",
        ("g_ghost_regnet",),
        _g_ghost_regnet("g_ghost_regnet_4.0g_78.6.pth", 78.6),
    ),
    "g_ghost_regnetx_080": Model(
        "regnet",
        "GGhostRegNetX080",
        ("g_ghost_regnet",),
        _g_ghost_regnet("g_ghost_regnet_8.0g_79.0.pth", 79.0),
    ),
    "g_ghost_regnetx_160": Model(
        "regnet",
        "GGhostRegNetX160",
        ("g_ghost_regnet",),
        _g_ghost_regnet("g_ghost_regnet_16.0g_79.9.pth", 79.9),
    ),
    # RegNetX: torchvision's weights; for 4.0GF, which torchvision lacks, pycls's via timm.
    "regnetx_032": Model(
        "regnet",
        "RegNetX032",
        _REGNETX,
        _torchvision("regnet_x_3_2gf-f342aeae.pth", 78.364, "torchvision_regnet"),
    ),
    "regnetx_040": Model(
        "regnet",
        "RegNetX040",
        ("timm_regnet",),
        PretrainedWeights(
            "https://huggingface.co/timm/regnetx_040.pycls_in1k/resolve/main/model.safetensors",
            top1=78.6,  # pycls's model zoo: 21.4% top-1 error
            converter="timm_regnet",
            source="pycls, via timm (regnetx_040.pycls_in1k)",
        ),
    ),
    "regnetx_080": Model(
        "regnet",
        "RegNetX080",
        _REGNETX,
        _torchvision("regnet_x_8gf-03ceed89.pth", 79.344, "torchvision_regnet"),
    ),
    "regnetx_160": Model(
        "regnet",
        "RegNetX160",
        _REGNETX,
        _torchvision("regnet_x_16gf-2007eb11.pth", 80.058, "torchvision_regnet"),
    ),
    # ResNets: torchvision's ResNet34/50; the Ghost and G-Ghost ResNets have no weights.
    "resnet34": Model(
        "resnet",
        "ResNet34",
        ("torchvision_resnet",),
        _torchvision("resnet34-b627a593.pth", 73.314, "torchvision_resnet"),
    ),
    "g_ghost_resnet34": Model("resnet", "GGhostResNet34"),
    "resnet50": Model(
        "resnet",
        "ResNet50",
        ("torchvision_resnet",),
        _torchvision("resnet50-0676ba61.pth", 76.13, "torchvision_resnet"),
    ),
    "ghost_resnet50_s2": Model("resnet", "GhostResNet50S2"),
    "ghost_resnet50_s4": Model("resnet", "GhostResNet50S4"),
    "resnet56": Model("resnet", "ResNet56"),
    "ghost_resnet56": Model("resnet", "GhostResNet56"),
    "g_ghost_resnet56": Model("resnet", "GGhostResNet56"),
    "g_ghost_resnet56_nomix": Model("resnet", "GGhostResNet56NoMix"),
    # VGG-16 for CIFAR-10 and its C-Ghost form.
    "vgg16_cifar": Model("vgg", "vgg16_cifar"),
    "ghost_vgg16_cifar": Model("vgg", "ghost_vgg16_cifar"),
}


def model_modules():
    """The family modules (full names) that define the catalogue's models, sorted."""
    return tuple(sorted({f"ghostnet_keras.{m.module}" for m in MODELS.values()}))


def public_names():
    """``{public name: family module}`` of every model's builder."""
    return {m.public: m.module for m in MODELS.values()}


def converted_by(converter):
    """The registry names whose checkpoints the converter ``converter`` converts, sorted."""
    return tuple(sorted(name for name, m in MODELS.items() if converter in m.converters))


def weights_entries():
    """``{name: PretrainedWeights}`` of every published checkpoint; a name is a registry
    name (the default weights of that model) or ``name.tag`` (other weights of it)."""
    table = {}
    for name, model in MODELS.items():
        found = model.weights
        for tag, entry in found.items() if isinstance(found, dict) else [("", found)]:
            if entry is not None:
                table[f"{name}.{tag}" if tag else name] = entry
    return table


def has_weights(name):
    """Whether ImageNet weights are published for the registry name ``name``."""
    model = MODELS.get(name)
    return model is not None and model.weights is not None
