"""C-GhostNet (GhostNet v1), paper Table 1 and Table 8.

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022), and [GhostNet: More Features from Cheap Operations](https://arxiv.org/abs/1911.11907)
  (CVPR 2020).

Layer names follow the module paths of the reference PyTorch code
(``blocks.<stage>.<i>.ghost1.primary_conv`` becomes ``blocks_<stage>_<i>_ghost1_primary_conv``)
so that official and timm checkpoints map onto this model one to one.
"""

import functools

from ghostnet_keras import blocks, catalog, skeleton

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

# Variants of the network, chosen by the weights that need them (docs/pretrained-weights.md):
# "paper" is Table 1 and the official code; "paddleclas" is PaddleClas's GhostNet, whose SE
# gate is clip(x, 0, 1), whose SE width is c // 4, and whose head conv has BatchNorm, no bias.
VARIANTS = {
    "paper": {"se_gate": "hard_sigmoid", "se_width": "divisible", "head_norm": False},
    "paddleclas": {"se_gate": "clip", "se_width": "floor", "head_norm": True},
}

SUMMARY = """Instantiates the C-GhostNet-{width}x architecture.

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](
    https://arxiv.org/abs/2201.03297) (IJCV 2022)

The network of the paper's Table 1 with width multiplier {width}: a 3x3 stem,
16 C-Ghost bottlenecks, a 1x1 conv to {last} channels, global pooling, a 1280-wide
fully connected layer and the classifier ({params} parameters, {macs} multiply-adds
at 224x224).
"""


def _body(x, width, variant="paper"):
    options = VARIANTS[variant]
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
                se_gate=options["se_gate"],
                se_width=options["se_width"],
                name=f"blocks_{stage_index}_{block_index}",
            )
    last = blocks.make_divisible(LAST_FILTERS * width)
    return blocks.conv_bn(x, last, 1, name=f"blocks_{len(GHOSTNET_STAGES)}")


@skeleton.family(dropout_rate=0.2)
def GhostNet(width=1.0, *application, variant=None):
    """Instantiates C-GhostNet at any width multiplier (paper Table 1).

    See `GhostNet100` for the other arguments. `width` multiplies (then rounds to a
    multiple of 4) the stem, every expansion and output width and the last
    1x1 conv; the 1280-wide head is not scaled. The model is named
    `ghostnet_<100 x width>`. `variant` (`VARIANTS`): `"paper"` (Table 1), or
    `"paddleclas"` (PaddleClas's GhostNet, whose weights need it); `None` is the one the
    ImageNet weights need with `weights="imagenet"`, else `"paper"`.
    """
    width = skeleton.check_width(width)
    variant = skeleton.check_choice("variant", variant or "paper", VARIANTS)
    body = functools.partial(_body, width=width, variant=variant)
    return skeleton.Architecture(
        skeleton.width_name("ghostnet", width),
        body,
        hidden=HEAD_FILTERS,
        hidden_norm=VARIANTS[variant]["head_norm"],
        variant=variant,
    )


def _variant(width, params, macs):
    suffix = f"{round(width * 100):03d}"
    name = f"ghostnet_{suffix}"
    extra = (
        '    variant: `None` (the one the weights need with `weights="imagenet"`, else\n'
        '        `"paper"`), `"paper"` or `"paddleclas"` (see `ghostnet_keras.ghostnet`).\n'
    )
    doc = SUMMARY.format(
        width=width, last=blocks.make_divisible(LAST_FILTERS * width), params=params, macs=macs
    ) + skeleton.args_doc(
        top="fully-connected head", imagenet=catalog.has_weights(name), extra=extra
    )
    return skeleton.variant(GhostNet, name, f"GhostNet{suffix}", doc, width=width)


GhostNet050 = _variant(0.5, "2,587,292", "42.3M")
GhostNet100 = _variant(1.0, "5,182,508", "141.2M")
GhostNet130 = _variant(1.3, "7,358,820", "227.0M")
