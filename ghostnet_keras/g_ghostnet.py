"""Mobile G-GhostNet (paper section 4.4, Table 2).

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022)

No reference code or weights exist for this network; it is built from the paper. What the
paper fixes: C-GhostNet's stem (3x3 stride-2 conv to 16) and head (1x1 conv to 960, pooling,
1x1 conv to 1280, classifier); four G-Ghost stages with mix (``blocks.g_ghost_stage``) whose
first block outputs 24/40/80/160 channels at stride 2 and whose complicated path has 1/1/5/5
more blocks (``GGHOSTNET_STAGES``, read like Table 2); "residual bottleneck" blocks with
expansion ratio 3 and SE on every block; ReLU everywhere; 1x1 conv cheap operation; ghost
ratio 0.4; a width multiplier alpha.

Choices the paper leaves open, and the reason for each:

- Block: ``blocks.bottleneck_block``, the ResNet bottleneck (1x1 conv, 3x3 conv with the
  stride, 1x1 conv, each + BN, ReLU after the first two and after the residual add, 1x1 conv
  + BN projection shortcut when the shape changes). The section builds G-GhostNet for GPUs
  because depthwise convolutions are "unfriendly to GPUs", so the 3x3 is a dense conv, not a
  depthwise one.
- "Expansion ratio 3" is read as in C-GhostNet's Table 1 (where #exp is about 3x #out in the
  first stages): the middle width is 3x the block's output width (72/120/240/480 at 1.0x; thin
  blocks 3x their thin width). The ResNet reading (middle = output / 3, 8 channels in stage 1)
  would leave a network far too small for the accuracy the paper reports, and the paper says
  G-GhostNet has *more* FLOPs than the mobile networks it beats on GPU latency.
- SE: C-GhostNet's module (reduced width ``make_divisible(mid / 4, 4)``, hard-sigmoid gate) on
  the 3x3 conv output, where C-GhostNet places it.
- Stage layout: exactly Table 2, a stage is first block -> [n thin blocks || cheap op] ->
  concat, with no block after the concat (``last_block=False``; the official G-Ghost RegNet
  adds one, Table 2 does not).
- Thin width: ``int(c * (1 - 0.4) / 4) * 4`` (rounded down to a multiple of 4, as the official
  RegNet code rounds down to its group width; C-GhostNet's channel counts are multiples of 4):
  12/24/48/96 complicated + 12/16/32/64 cheap channels at 1.0x. The thin path reads the first
  channels of the first block's output, the cheap op the rest (official code).
- Width multiplier: scales (then ``make_divisible(., 4)``) the stem, every stage width and the
  960-wide last conv, not the 1280-wide head, as C-GhostNet.
- Head: C-GhostNet's (1x1 conv to 960 + BN + ReLU, ``last_conv``/``last_bn``,
  pooling, ``Dense(1280)`` + ReLU named ``head``, dropout 0.2, classifier).

At 224x224 this gives G-GhostNet-1.0x 11.2M parameters / 1.00G MACs / 3.4M activations
(C-GhostNet-1.0x: 5.2M / 0.14G / 3.5M; see docs/models.md).
"""

import functools

from ghostnet_keras import blocks, skeleton

# Table 2: each stage is a G-Ghost stage. Row: #out, stride of its first block, number of
# blocks on the complicated path next to the cheap operation ("Block x n  Cheap").
GGHOSTNET_STAGES = (
    # out, s, n
    (24, 2, 1),
    (40, 2, 1),
    (80, 2, 5),
    (160, 2, 5),
)
STEM_FILTERS = 16
LAST_FILTERS = 960
HEAD_FILTERS = 1280
EXPANSION = 3
SE_RATIO = 0.25
GHOST_RATIO = 0.4
CHEAP_OP = "conv1x1"
THIN_DIVISOR = 4


def _block(x, filters, strides=1, name=None):
    return blocks.bottleneck_block(
        x, filters, strides, mid_filters=EXPANSION * filters, se_ratio=SE_RATIO, name=name
    )


def _body(x, width):
    x = blocks.conv_bn(x, blocks.make_divisible(STEM_FILTERS * width), 3, strides=2, name="stem")
    for k, (out, strides, thin) in enumerate(GGHOSTNET_STAGES, start=1):
        x = blocks.g_ghost_stage(
            x,
            _block,
            thin + 1,
            blocks.make_divisible(out * width),
            strides,
            ghost_ratio=GHOST_RATIO,
            cheap_op=CHEAP_OP,
            mix=True,
            thin_divisor=THIN_DIVISOR,
            last_block=False,
            name=f"stage{k}",
        )
    return blocks.conv_bn(x, blocks.make_divisible(LAST_FILTERS * width), 1, name="last")


@skeleton.family(dropout_rate=0.2)
def GGhostNet(width=1.0, *application):
    """Instantiates G-GhostNet at any width multiplier (paper Table 2).

    See `GGhostNet100` for the other arguments. The model is named
    `g_ghostnet_<100 x width>`.
    """
    width = skeleton.check_width(width)
    body = functools.partial(_body, width=width)
    return skeleton.Architecture(
        skeleton.width_name("g_ghostnet", width), body, hidden=HEAD_FILTERS
    )


SUMMARY = """Instantiates the G-GhostNet-{width}x architecture (paper Table 2).

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](
    https://arxiv.org/abs/2201.03297) (IJCV 2022)

C-GhostNet's stem and head around four G-Ghost stages (ghost ratio 0.4, 1x1
conv cheap operation, mix) of SE residual bottlenecks with expansion 3
({params} parameters, {macs} multiply-adds at 224x224). Built from the paper
alone (no reference code exists): see the `ghostnet_keras.g_ghostnet` module
docstring for every choice.
"""


def _variant(width, params, macs):
    suffix = f"{round(width * 100):03d}"
    doc = SUMMARY.format(width=width, params=params, macs=macs) + skeleton.args_doc(
        top="fully-connected head"
    )
    return skeleton.variant(
        GGhostNet, f"g_ghostnet_{suffix}", f"GGhostNet{suffix}", doc, width=width
    )


GGhostNet050 = _variant(0.5, "4,070,576", "246.8M")
GGhostNet100 = _variant(1.0, "11,182,440", "998.0M")
GGhostNet130 = _variant(1.3, "17,283,912", "1657.7M")
