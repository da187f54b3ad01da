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

from ghostnet_keras import blocks, skeleton
from ghostnet_keras.ghostifier import check_ratio_dw, ghost_conv
from ghostnet_keras.registry import register_model

# The 13 conv layers of VGG-16 ("M" = 2x2 max-pool), grouped into the five blocks.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
HIDDEN_UNITS = 512  # the fully connected layer between the pooled features and the classifier

# CIFAR-10 training set statistics per RGB channel, for images scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
DEFAULT_SIZE = 32


def preprocess_input(x):
    """Maps 0-255 RGB images to the input of a model built with ``include_preprocessing=False``."""
    mean = keras.ops.convert_to_tensor([255.0 * m for m in CIFAR10_MEAN])
    std = keras.ops.convert_to_tensor([255.0 * s for s in CIFAR10_STD])
    return (keras.ops.cast(x, "float32") - mean) / std


def _preprocessing(x):
    return skeleton.normalization(x, CIFAR10_MEAN, CIFAR10_STD)


def _body(x, ghost):
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
    return x


def _architecture(model_name, ghost):
    return skeleton.Architecture(
        model_name,
        body=lambda x: _body(x, ghost),
        hidden=HIDDEN_UNITS,
        preprocessing=_preprocessing,
        default_size=DEFAULT_SIZE,
    )


@skeleton.family(name="vgg16_cifar", classes=10, dropout_rate=0.5)
def vgg16_cifar(*application):
    """Instantiates VGG-16 for CIFAR-10 (15.0M parameters, 313M multiply-adds at 32x32).

    Layers: ``block<b>_<i>_conv`` / ``_bn`` / ``_relu`` for the conv ``i`` of block ``b``
    (both counted from 1), ``block<b>_pool``, then ``avg_pool`` (the map is 1x1 at
    32x32), ``head`` (Dense 512) + ``head_relu``, ``dropout``, ``classifier``,
    ``predictions``. No pretrained weights are published.
    """
    return _architecture("vgg16_cifar", None)


@skeleton.family(classes=10, dropout_rate=0.5)
def ghost_vgg16_cifar(*application, ratio=2, dw_size=3):
    """Instantiates C-Ghost-VGG-16 for CIFAR-10 (paper Tables 4-6).

    The graph ``ghostify(vgg16_cifar(...), ratio, dw_size)`` gives (built directly so
    that `input_tensor` works): each of the 13 convs becomes a C-Ghost module
    ``block<b>_<i>_conv_primary_conv`` / ``_primary_bn`` / ``_cheap_conv`` /
    ``_cheap_bn`` / ``_concat`` (/ ``_slice``), followed by the original ``_bn``
    and ``_relu``. ``ratio`` is the paper's ``s`` (2 to 5 in Table 5), ``dw_size``
    its ``d`` (1, 3, 5, 7 in Table 4). At s=2, d=3: 7,658,922 parameters, 158.1M
    multiply-adds (paper: 7.7M, 158M, 93.7%). No pretrained weights are published.
    """
    check_ratio_dw(ratio, dw_size)
    name = "ghost_vgg16_cifar"
    if (ratio, dw_size) != (2, 3):
        name += f"_s{ratio}_d{dw_size}"
    return _architecture(name, {"ratio": ratio, "dw_size": dw_size})


register_model("vgg16_cifar")(vgg16_cifar)
register_model("ghost_vgg16_cifar")(ghost_vgg16_cifar)
_CIFAR_ARGS = {
    "size": DEFAULT_SIZE,
    "classes": 10,
    "dropout_rate": 0.5,
    "top": "512-wide FC layer and the classifier",
    "normalisation": f"CIFAR-10 training-set mean\n{CIFAR10_MEAN} and standard deviation "
    f"{CIFAR10_STD} (per channel, on [0, 1]\nimages; layer `preprocessing`)",
    "preprocess_input": "ghostnet_keras.vgg.preprocess_input(x)",
}
vgg16_cifar.__doc__ += skeleton.args_doc(**_CIFAR_ARGS, name="`vgg16_cifar`")
ghost_vgg16_cifar.__doc__ += skeleton.args_doc(
    **_CIFAR_ARGS,
    name="`ghost_vgg16_cifar`, with `_s<ratio>_d<dw_size>` unless 2 and 3",
    extra="    ratio: the ghost ratio s, an integer >= 2.\n"
    "    dw_size: the kernel size d of the cheap depthwise conv.\n",
)
