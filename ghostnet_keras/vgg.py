"""VGG-16 for CIFAR-10 and C-Ghost-VGG-16, paper section 5.2.2 and Tables 4-6.

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022), Tables 4, 5 and 6.
- The CIFAR variant of VGG-16 (Zagoruyko, 2015, "92.45% on CIFAR-10 in Torch"), as used by
  PFEC (Li et al., 2017): thirteen 3x3 conv + BN + ReLU layers, five max-pools, then a
  512-wide fully connected layer + ReLU and the classifier. It has 15.0M parameters and
  313M multiply-adds on 32x32 input, the paper's VGG16 row; without the 512-wide layer it
  would have 14.7M.

C-Ghost-VGG-16 is the graph of ``ghostify(vgg16_cifar(...))``: every conv (the first one
included) becomes a C-Ghost module with ratio ``s`` and cheap ``d x d`` depthwise conv; the
BN and ReLU after each conv stay. The builder adds the same layers directly (so that
``input_tensor`` works), and the tests check that both graphs are identical.
"""

import keras

from ghostnet_keras import _common, blocks
from ghostnet_keras.ghostify import check_ratio_dw, ghost_conv
from ghostnet_keras.registry import register_model

# The 13 conv layers of VGG-16 ("M" = 2x2 max-pool), grouped into the five blocks.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
HIDDEN_UNITS = 512  # the fully connected layer between the pooled features and the classifier

# CIFAR-10 training set statistics per RGB channel, for images scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

_ARGS_DOC = """
With `include_preprocessing=True` (the default) the model takes RGB images with
values in [0, 255] and normalises them in the graph with the CIFAR-10 training-set
mean {mean} and standard deviation {std} (per channel, on [0, 1] images): layer
`preprocessing`. With `include_preprocessing=False` feed `ghostnet_keras.vgg.preprocess_input(x)`.

Args:
    include_top: whether to include the 512-wide FC layer and the classifier.
    weights: `None` (random initialization) or the path to a weights file to load
        (no pretrained CIFAR weights are published).
    input_tensor: optional Keras tensor (output of `keras.Input()`) to use as image
        input for the model.
    input_shape: optional shape tuple `(height, width, channels)`, height and width at
        least 32. Defaults to `(32, 32, 3)` with the top and `(None, None, 3)` without.
    pooling: optional pooling mode for feature extraction when `include_top` is
        `False`: `None`, `"avg"` or `"max"`.
    classes: number of classes (10 for CIFAR-10).
    classifier_activation: a `str` or callable, the activation of the top layer;
        `None` returns the logits.
    dropout_rate: dropout before the classifier.
    include_preprocessing: whether to put the CIFAR-10 normalisation in the graph.
    name: the model's name.
"""


def preprocess_input(x):
    """Maps 0-255 RGB images to the input of a model built with ``include_preprocessing=False``."""
    mean = keras.ops.convert_to_tensor([255.0 * m for m in CIFAR10_MEAN])
    std = keras.ops.convert_to_tensor([255.0 * s for s in CIFAR10_STD])
    return (keras.ops.cast(x, "float32") - mean) / std


def _preprocessing(x):
    return keras.layers.Normalization(
        mean=[255.0 * m for m in CIFAR10_MEAN],
        variance=[(255.0 * s) ** 2 for s in CIFAR10_STD],
        name="preprocessing",
    )(x)


def _vgg16(
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
    ghost,
):
    shape = _common.check_args(
        weights=weights,
        include_top=include_top,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        default_size=32,
        weight_classes=10,
    )
    if weights == "imagenet":
        raise ValueError(
            "No pretrained weights are published for the CIFAR VGG-16 models; pass `None` or "
            f"a weights file. Received: weights={weights!r}"
        )
    inputs, x = _common.make_input(input_tensor, shape)
    if include_preprocessing:
        x = _preprocessing(x)
    for b, filters in enumerate(VGG16_BLOCKS, start=1):
        for i, f in enumerate(filters, start=1):
            if ghost is None:
                x = blocks.conv_bn(x, f, 3, name=f"block{b}_{i}")
            else:
                # Exactly what ghostify() makes of the conv of blocks.conv_bn.
                x = ghost_conv(x, f, 3, name=f"block{b}_{i}_conv", **ghost)
                x = blocks.batch_norm(x, f"block{b}_{i}_bn")
                x = keras.layers.ReLU(name=f"block{b}_{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = _common.top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
        hidden=HIDDEN_UNITS,
    )
    model = keras.Model(inputs, x, name=name)
    _common.load_weights(model, weights, name, include_top)
    return model


def vgg16_cifar(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    dropout_rate=0.5,
    include_preprocessing=True,
    name="vgg16_cifar",
):
    """Instantiates VGG-16 for CIFAR-10 (15.0M parameters, 313M multiply-adds at 32x32).

    Layers: ``block<b>_<i>_conv`` / ``_bn`` / ``_relu`` for the conv ``i`` of block ``b``
    (both counted from 1), ``block<b>_pool``, then ``avg_pool`` (the map is 1x1 at
    32x32), ``head`` (Dense 512) + ``head_relu``, ``dropout``, ``classifier``,
    ``predictions``.
    """
    return _vgg16(
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
        ghost=None,
    )


def ghost_vgg16_cifar(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    dropout_rate=0.5,
    include_preprocessing=True,
    ratio=2,
    dw_size=3,
    name=None,
):
    """Instantiates C-Ghost-VGG-16 for CIFAR-10 (paper Tables 4-6).

    The graph ``ghostify(vgg16_cifar(...), ratio, dw_size)`` gives (built directly so
    that `input_tensor` works): each of the 13 convs becomes a C-Ghost module
    ``block<b>_<i>_conv_primary_conv`` / ``_primary_bn`` / ``_cheap_conv`` /
    ``_cheap_bn`` / ``_concat`` (/ ``_slice``), followed by the original ``_bn``
    and ``_relu``. ``ratio`` is the paper's ``s`` (2 to 5 in Table 5), ``dw_size``
    its ``d`` (1, 3, 5, 7 in Table 4). At s=2, d=3: 7,658,922 parameters, 158.1M
    multiply-adds (paper: 7.7M, 158M, 93.7%).
    """
    check_ratio_dw(ratio, dw_size)
    if name is None:
        name = "ghost_vgg16_cifar"
        if (ratio, dw_size) != (2, 3):
            name += f"_s{ratio}_d{dw_size}"
    return _vgg16(
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
        ghost={"ratio": ratio, "dw_size": dw_size},
    )


register_model("vgg16_cifar")(vgg16_cifar)
register_model("ghost_vgg16_cifar")(ghost_vgg16_cifar)
vgg16_cifar.__doc__ += _ARGS_DOC.format(mean=CIFAR10_MEAN, std=CIFAR10_STD)
ghost_vgg16_cifar.__doc__ += _ARGS_DOC.format(mean=CIFAR10_MEAN, std=CIFAR10_STD) + (
    "    ratio: the ghost ratio s, an integer >= 2.\n"
    "    dw_size: the kernel size d of the cheap depthwise conv.\n"
)
