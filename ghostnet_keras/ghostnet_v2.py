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
(:mod:`ghostnet_keras.converters.ghostnet_v2v3` maps them), so checkpoints map one to one.

Choices where the paper is silent (the official code decides, timm follows it):
- the gate is the logistic sigmoid, not the hard sigmoid of the SE blocks;
- the gate is computed at half resolution (2x2 average pool, floor for odd sizes) and brought
  back with PyTorch's ``nearest`` rule (:class:`ghostnet_keras.blocks_v2.NearestUpsample`),
  so the smallest input is 33x33 (the last stage must be at least 2x2 to pool).
"""

import functools
import textwrap

from ghostnet_keras import blocks, blocks_v2, catalog, skeleton
from ghostnet_keras.ghostnet import GHOSTNET_STAGES, HEAD_FILTERS, LAST_FILTERS, STEM_FILTERS

# Bottlenecks (counted over all stages) before the first one with DFC attention.
PLAIN_BLOCKS = 2
# The last stage (stride 32) must be >= 2x2 for the DFC gate's 2x2 average pool.
MIN_INPUT_SIZE = 33

SUMMARY = """Instantiates the {title} architecture.

Reference:
- {reference}

{description}
"""


def summary(title, reference, description):
    """The first part of a builder's docstring, the description wrapped at 80 columns."""
    return SUMMARY.format(
        title=title,
        reference=reference,
        description=textwrap.fill(description, 80, break_on_hyphens=False),
    )


def _body(x, width, version):
    """Stem, the 16 bottlenecks (DFC attention from the third on), the last 1x1 conv."""
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
    return blocks.conv_bn(x, last, 1, name=f"blocks_{len(GHOSTNET_STAGES)}")


def architecture(version, width):
    """The GhostNetV2 (``version=2``) or GhostNetV3 training-form (``version=3``) network."""
    width = skeleton.check_width(width)
    return skeleton.Architecture(
        skeleton.width_name(f"ghostnetv{version}", width),
        functools.partial(_body, width=width, version=version),
        hidden=HEAD_FILTERS,
        min_size=MIN_INPUT_SIZE,
    )


@skeleton.family(dropout_rate=0.2)
def GhostNetV2(width=1.0, *application):
    """Instantiates GhostNetV2 at any width multiplier.

    See `GhostNet100V2` for the other arguments. `width` multiplies (then rounds to a
    multiple of 4) the stem, every expansion and output width and the last
    1x1 conv; the 1280-wide head is not scaled. The model is named
    `ghostnetv2_<100 x width>`.
    """
    return architecture(2, width)


def variant(family, version, width, summary):
    """The registered builder ``GhostNet<100 x width>V<version>`` of ``family``."""
    suffix = f"{round(width * 100):03d}"
    name = f"ghostnetv{version}_{suffix}"
    doc = summary + skeleton.args_doc(
        top="fully-connected head", imagenet=catalog.has_weights(name), min_size=MIN_INPUT_SIZE
    )
    # keras.applications' ResNet50V2 pattern: the width, then the generation.
    return skeleton.variant(family, name, f"GhostNet{suffix}V{version}", doc, width=width)


def _summary(width, params, macs):
    return summary(
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


GhostNet100V2 = variant(GhostNetV2, 2, 1.0, _summary(1.0, "6,156,908", "167.0M"))
GhostNet130V2 = variant(GhostNetV2, 2, 1.3, _summary(1.3, "8,960,404", "269.3M"))
GhostNet160V2 = variant(GhostNetV2, 2, 1.6, _summary(1.6, "12,392,698", "398.6M"))
