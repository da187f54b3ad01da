"""C-GhostNet (GhostNet v1), paper Table 1 and Table 8.

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022), and [GhostNet: More Features from Cheap Operations](https://arxiv.org/abs/1911.11907)
  (CVPR 2020).

Layer names follow the module paths of the reference PyTorch code
(``blocks.<stage>.<i>.ghost1.primary_conv`` becomes ``blocks_<stage>_<i>_ghost1_primary_conv``)
so that official and timm checkpoints map onto this model one to one.
"""

import keras

from ghostnet_keras import _common, blocks, pretrained
from ghostnet_keras.registry import register_model

# Table 1 of the paper, grouped into the stages of the reference code.
# Each row: depthwise kernel k, expansion size #exp, output channels #out, SE ratio, stride.
GHOSTNET_STAGES = (
    # k, exp, out, se, s
    ((3, 16, 16, 0, 1),),
    ((3, 48, 24, 0, 2),),
    ((3, 72, 24, 0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0, 2),),
    (
        (3, 200, 80, 0, 1),
        (3, 184, 80, 0, 1),
        (3, 184, 80, 0, 1),
        (3, 480, 112, 0.25, 1),
        (3, 672, 112, 0.25, 1),
    ),
    ((5, 672, 160, 0.25, 2),),
    (
        (5, 960, 160, 0, 1),
        (5, 960, 160, 0.25, 1),
        (5, 960, 160, 0, 1),
        (5, 960, 160, 0.25, 1),
    ),
)
STEM_FILTERS = 16
LAST_FILTERS = 960  # the 1x1 conv after the last stage, scaled by the width
HEAD_FILTERS = 1280  # the pooled 1x1 conv before the classifier, never scaled

BASE_DOCSTRING = """Instantiates the C-GhostNet-{width}x architecture.

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](
    https://arxiv.org/abs/2201.03297) (IJCV 2022)

The network of the paper's Table 1 with width multiplier {width}: a 3x3 stem,
16 C-Ghost bottlenecks, a 1x1 conv to {last} channels, global pooling, a 1280-wide
fully connected layer and the classifier ({params} parameters, {macs} multiply-adds
at 224x224).

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
        width at least 32. Defaults to `(224, 224, 3)` with the top and to
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


def GhostNet(
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
    """Instantiates C-GhostNet at any width multiplier (paper Table 1).

    See `GhostNet100` for the arguments. `width` multiplies (then rounds to a
    multiple of 4) the stem, every expansion and output width and the last
    1x1 conv; the 1280-wide head is not scaled.
    """
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
    )
    model_name = f"ghostnet_{round(width * 100):03d}"
    if weights == "imagenet":
        pretrained.check_available(model_name)

    inputs, x = _common.make_input(input_tensor, shape)
    if include_preprocessing:
        x = _common.preprocessing(x)
    x = blocks.conv_bn(x, blocks.make_divisible(STEM_FILTERS * width), 3, strides=2, name="stem")
    for stage_index, stage in enumerate(GHOSTNET_STAGES):
        for block_index, (k, exp, out, se, s) in enumerate(stage):
            x = blocks.ghost_bottleneck(
                x,
                blocks.make_divisible(exp * width),
                blocks.make_divisible(out * width),
                kernel_size=k,
                strides=s,
                se_ratio=se,
                name=f"blocks_{stage_index}_{block_index}",
            )
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


def _fixed_width(width, params, macs):
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
        return GhostNet(
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
    builder.__name__ = builder.__qualname__ = f"GhostNet{suffix}"
    builder.__doc__ = BASE_DOCSTRING.format(
        width=width, last=blocks.make_divisible(LAST_FILTERS * width), params=params, macs=macs
    )
    return register_model(f"ghostnet_{suffix}")(builder)


GhostNet050 = _fixed_width(0.5, "2,587,292", "42.3M")
GhostNet100 = _fixed_width(1.0, "5,182,508", "141.2M")
GhostNet130 = _fixed_width(1.3, "7,358,820", "227.0M")
