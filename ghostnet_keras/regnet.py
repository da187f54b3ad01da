"""RegNetX and G-Ghost RegNetX (paper section 5.3.4, Tables 17 and 18).

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022); [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678) (RegNet).

The structure follows the official G-Ghost RegNet code (Huawei Efficient-AI-Backbones,
``ghostnet_pytorch/g_ghost_regnet.py``): a 3x3 stride-2 stem to 32 channels, four stages of
RegNetX blocks (bottleneck ratio 1, grouped 3x3 of group width ``gw``, stride on the 3x3,
1x1 conv + BN projection shortcut when the shape changes), global pooling, dropout 0.2 and
the classifier. In the G-Ghost model every stage of more than two blocks is a G-Ghost stage
(ghost ratio 0.5, 1x1 conv cheap operation, mix) whose thin blocks have group width
``int(0.75 * gw)`` and whose thin width is rounded down to a multiple of it. The plain
``regnetx_*`` models are the same networks with plain stages (torchvision's
``regnet_x_3_2gf``/``_8gf``/``_16gf`` have the same parameter counts).

Layer names follow the official module paths: ``stem_conv``, ``layer<k>_<i>_conv1`` (plain
stage), ``layer<k>_base_*``, ``layer<k>_layers_<i>_*``, ``layer<k>_cheap_conv``,
``layer<k>_merge_conv1``, ``layer<k>_end_*`` (G-Ghost stage), ``classifier``.
"""

import functools

import keras

from ghostnet_keras import _common, blocks, pretrained
from ghostnet_keras.registry import register_model

STEM_FILTERS = 32
GHOST_RATIO = 0.5
THIN_GROUP_WIDTH_SCALE = 0.75  # thin blocks: group width int(0.75 * gw)

# RegNetX configurations (Radosavovic et al. 2020), as in paper Table 18.
# name: (depths, widths, group width gw, MACs / params of the G-Ghost model in the paper)
REGNETX_CONFIGS = {
    "032": ((2, 6, 15, 2), (96, 192, 432, 1008), 48),
    "040": ((2, 5, 14, 2), (80, 240, 560, 1360), 40),
    "080": ((2, 5, 15, 1), (80, 240, 720, 1920), 120),
    "160": ((2, 6, 13, 1), (256, 512, 896, 2048), 128),
}
PAPER_NAMES = {"032": "3.2GF", "040": "4.0GF", "080": "8.0GF", "160": "16GF"}


def regnetx(
    config,
    ghost=True,
    ghost_ratio=GHOST_RATIO,
    mix=True,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    dropout_rate=0.2,
    include_preprocessing=True,
    name=None,
):
    """Builds RegNetX-``config`` ("032", "040", "080", "160"), G-Ghost when ``ghost``.

    ``config`` may also be a tuple ``(depths, widths, group_width)`` for other
    RegNetX sizes (e.g. a tiny one for tests).

    ``ghost_ratio`` and ``mix`` tune the G-Ghost stages; the other arguments are
    those of ``keras.applications``.
    """
    if isinstance(config, str) and config in REGNETX_CONFIGS:
        depths, widths, group_width = REGNETX_CONFIGS[config]
        tag = config
    elif (
        isinstance(config, (tuple, list))
        and len(config) == 3
        and len(config[0]) == len(config[1])
        and all(isinstance(v, int) and v > 0 for v in (*config[0], *config[1], config[2]))
    ):
        depths, widths, group_width = config
        tag = "custom"
    else:
        raise ValueError(
            f"`config` must be one of {sorted(REGNETX_CONFIGS)} or a tuple (depths, widths, "
            f"group_width) of positive integers. Received: config={config!r}"
        )
    model_name = f"{'g_ghost_' if ghost else ''}regnetx_{tag}"
    if weights == "imagenet":
        pretrained.check_available(model_name)
    shape = _common.check_args(
        weights=weights,
        include_top=include_top,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    thin_group_width = int(THIN_GROUP_WIDTH_SCALE * group_width)

    inputs, x = _common.make_input(input_tensor, shape)
    if include_preprocessing:
        x = _common.preprocessing(x)
    x = blocks.conv_bn(x, STEM_FILTERS, 3, strides=2, name="stem")
    for k, (depth, width) in enumerate(zip(depths, widths, strict=True), start=1):
        x = blocks.g_ghost_stage(
            x,
            functools.partial(blocks.regnetx_block, group_width=group_width),
            depth,
            width,
            strides=2,
            ghost_ratio=ghost_ratio if ghost and depth > 2 else 0,
            mix=mix,
            thin_block_fn=functools.partial(blocks.regnetx_block, group_width=thin_group_width),
            thin_divisor=thin_group_width,
            name=f"layer{k}",
        )
    x = _common.top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
    )
    model = keras.Model(inputs, x, name=name or model_name)
    _common.load_weights(model, weights, model_name, include_top)
    return model


ARGS_DOCSTRING = """
With `include_preprocessing=True` (the default) the model takes RGB images with
values in [0, 255] and normalises them in the graph (ImageNet mean/std).
No ImageNet weights are published for it: `weights="imagenet"` raises a ValueError.

Args:
    include_top: whether to include the classifier.
    weights: `None` (random initialization) or the path to a weights file.
    input_tensor: optional Keras tensor (output of `keras.Input()`) to use as
        image input for the model.
    input_shape: optional shape tuple `(height, width, channels)`; height and
        width at least 32. Defaults to `(224, 224, 3)` with the top and to
        `(None, None, 3)` without it.
    pooling: optional pooling mode for feature extraction when `include_top`
        is `False`: `None`, `"avg"` or `"max"`.
    classes: number of classes.
    classifier_activation: a `str` or callable, the activation of the top
        layer; `None` returns the logits.
    dropout_rate: dropout before the classifier.
    include_preprocessing: whether to put the input normalisation in the graph.
    name: the model's name.

Returns:
    A Keras `Model` instance.
"""


def _builder(config, ghost, params, macs):
    def builder(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        dropout_rate=0.2,
        include_preprocessing=True,
        name=None,
    ):
        return regnetx(
            config,
            ghost=ghost,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            dropout_rate=dropout_rate,
            include_preprocessing=include_preprocessing,
            name=name,
        )

    prefix = "GGhost" if ghost else ""
    builder.__name__ = builder.__qualname__ = f"{prefix}RegNetX{config}"
    title = f"{'G-Ghost-' if ghost else ''}RegNetX-{PAPER_NAMES[config]}"
    depths, widths, gw = REGNETX_CONFIGS[config]
    builder.__doc__ = (
        f"Instantiates {title} (paper Table 18): depths {depths}, widths {widths}, "
        f"group width {gw}; {params} parameters and {macs} multiply-adds at 224x224.\n"
        + ARGS_DOCSTRING
    )
    return register_model(f"{'g_ghost_' if ghost else ''}regnetx_{config}")(builder)


GGhostRegNetX032 = _builder("032", True, "10,511,000", "1.802G")
GGhostRegNetX040 = _builder("040", True, "15,726,268", "2.228G")
GGhostRegNetX080 = _builder("080", True, "24,586,928", "4.150G")
GGhostRegNetX160 = _builder("160", True, "32,381,704", "8.997G")
RegNetX032 = _builder("032", False, "15,296,552", "3.2G")
RegNetX040 = _builder("040", False, "22,118,248", "4.0G")
RegNetX080 = _builder("080", False, "39,572,648", "8.0G")
RegNetX160 = _builder("160", False, "54,278,536", "16.0G")
