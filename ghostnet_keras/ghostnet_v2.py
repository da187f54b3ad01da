"""GhostNetV2: C-GhostNet with DFC attention.

Reference:
- [GhostNetV2: Enhance Cheap Operation with Long-Range Attention](
  https://arxiv.org/abs/2211.12905) (NeurIPS 2022)

The network is C-GhostNet's (the same Table 1 of blocks, stem, last conv and head, see
:mod:`ghostnet_keras.ghostnet`) with the expansion Ghost module of every bottleneck from the
third on (``blocks.2.0`` onwards; the first two keep the plain module, as the official code
and timm) multiplied by a DFC attention gate (:func:`ghostnet_keras.blocks_v2.ghost_module_v2`).

Layer names follow the module paths of timm's ``ghostnetv2_*`` (and the official code's):
``blocks.3.0.ghost1.short_conv.2`` becomes ``blocks_3_0_ghost1_short_hconv``
(:mod:`ghostnet_keras.convert_v2v3` maps them), so checkpoints map one to one.

Choices where the paper is silent (the official code decides, timm follows it):
- the gate is the logistic sigmoid, not the hard sigmoid of the SE blocks;
- the gate is computed at half resolution (2x2 average pool, floor for odd sizes) and brought
  back with PyTorch's ``nearest`` rule (:class:`ghostnet_keras.blocks_v2.NearestUpsample`),
  so the smallest input is 33x33 (the last stage must be at least 2x2 to pool).
"""

import keras

from ghostnet_keras import _common, blocks, blocks_v2, pretrained
from ghostnet_keras.ghostnet import GHOSTNET_STAGES, HEAD_FILTERS, LAST_FILTERS, STEM_FILTERS
from ghostnet_keras.registry import register_model

# Bottlenecks (counted over all stages) before the first one with DFC attention.
PLAIN_BLOCKS = 2
# The last stage (stride 32) must be >= 2x2 for the DFC gate's 2x2 average pool.
MIN_INPUT_SIZE = 33

BASE_DOCSTRING = """Instantiates the {title} architecture.

Reference:
- {reference}

{description}

With `include_preprocessing=True` (the default) the model takes RGB images with
values in [0, 255] and normalises them in the graph. With
`include_preprocessing=False`, apply `ghostnet_keras.preprocess_input` first.

Args:
    include_top: whether to include the fully-connected head.
    weights: `None` (random initialization), `"imagenet"`, or the path to a
        weights file to load.
    input_tensor: optional Keras tensor (output of `keras.Input()`) to use as
        image input for the model.
    input_shape: optional shape tuple `(height, width, channels)`; height and
        width at least 33. Defaults to `(224, 224, 3)` with the top and to
        `(None, None, 3)` without it.
    pooling: optional pooling mode for feature extraction when `include_top`
        is `False`: `None` (the 4D output of the last conv), `"avg"` or `"max"`.
    classes: number of classes to classify images into, only with
        `include_top=True` and no `weights`, or with `classes=1000`.
    classifier_activation: a `str` or callable, the activation of the top
        layer; `None` returns the logits.
    dropout_rate: dropout before the classifier.
    include_preprocessing: whether to put the input normalisation in the graph.
    name: the model's name.

Returns:
    A Keras `Model` instance.
"""


def build_v2v3(
    version,
    width,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    dropout_rate,
    include_preprocessing,
    name,
):
    """The GhostNetV2 (``version=2``) or GhostNetV3 training-form (``version=3``) network."""
    shape = _common.check_args(
        weights=weights,
        include_top=include_top,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        width=width,
        include_preprocessing=include_preprocessing,
        min_size=MIN_INPUT_SIZE,
    )
    model_name = f"ghostnetv{version}_{round(width * 100):03d}"
    if weights == "imagenet":
        pretrained.check_available(model_name)

    inputs, x = _common.make_input(input_tensor, shape)
    if include_preprocessing:
        x = _common.preprocessing(x)
    x = blocks.conv_bn(x, blocks.make_divisible(STEM_FILTERS * width), 3, strides=2, name="stem")
    block_count = 0
    for stage_index, stage in enumerate(GHOSTNET_STAGES):
        for block_index, (k, exp, out, se, s) in enumerate(stage):
            x = blocks_v2.ghost_bottleneck_v2(
                x,
                blocks.make_divisible(exp * width),
                blocks.make_divisible(out * width),
                kernel_size=k,
                strides=s,
                se_ratio=se,
                attention=block_count >= PLAIN_BLOCKS,
                version=version,
                name=f"blocks_{stage_index}_{block_index}",
            )
            block_count += 1
    last = blocks.make_divisible(LAST_FILTERS * width)
    x = blocks.conv_bn(x, last, 1, name=f"blocks_{len(GHOSTNET_STAGES)}")
    x = _common.top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
        hidden=HEAD_FILTERS,
    )
    model = keras.Model(inputs, x, name=name or model_name)
    _common.load_weights(model, weights, model_name, include_top)
    return model


def GhostNetV2(
    width=1.0,
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
    """Instantiates GhostNetV2 at any width multiplier.

    See `GhostNet100V2` for the arguments. `width` multiplies (then rounds to a
    multiple of 4) the stem, every expansion and output width and the last
    1x1 conv; the 1280-wide head is not scaled.
    """
    return build_v2v3(
        2,
        width,
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


def fixed_width(family, width, docstring):
    """A registered builder of ``family`` (``GhostNetV2``/``GhostNetV3``) at ``width``."""

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
        return family(
            width,
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

    suffix = f"{round(width * 100):03d}"
    version = family.__name__[-2:]  # "V2" / "V3"
    # keras.applications' ResNet50V2 pattern: the width, then the generation.
    builder.__name__ = builder.__qualname__ = f"GhostNet{suffix}{version}"
    builder.__doc__ = docstring
    return register_model(f"ghostnet{version.lower()}_{suffix}")(builder)


def _docstring(width, params, macs):
    return BASE_DOCSTRING.format(
        title=f"GhostNetV2-{width}x",
        reference="[GhostNetV2: Enhance Cheap Operation with Long-Range Attention]("
        "https://arxiv.org/abs/2211.12905) (NeurIPS 2022)",
        description=(
            f"C-GhostNet-{width}x (paper Table 1: a 3x3 stem, 16 Ghost bottlenecks, a 1x1 conv "
            f"to {blocks.make_divisible(LAST_FILTERS * width)} channels, pooling, a 1280-wide "
            "fully connected layer, the classifier) whose expansion Ghost modules from the "
            "third bottleneck on are multiplied by a DFC attention gate "
            f"({params} parameters, {macs} multiply-adds at 224x224)."
        ),
    )


GhostNet100V2 = fixed_width(GhostNetV2, 1.0, _docstring(1.0, "6,156,908", "167.0M"))
GhostNet130V2 = fixed_width(GhostNetV2, 1.3, _docstring(1.3, "8,960,404", "269.3M"))
GhostNet160V2 = fixed_width(GhostNetV2, 1.6, _docstring(1.6, "12,392,698", "398.6M"))
