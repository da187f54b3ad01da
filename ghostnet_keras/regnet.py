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

from ghostnet_keras import blocks, skeleton

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


def _body(depths, widths, group_width, ghost, ghost_ratio, mix, x):
    thin_group_width = int(THIN_GROUP_WIDTH_SCALE * group_width)
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
    return x


@skeleton.family(dropout_rate=0.2)
def regnetx(config, ghost=True, ghost_ratio=GHOST_RATIO, mix=True, *application):
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
        and len(config[0]) == len(config[1]) > 0
        and all(isinstance(v, int) and v > 0 for v in (*config[0], *config[1], config[2]))
    ):
        depths, widths, group_width = config
        skeleton.check_stages(config, depths, widths, [c[:2] for c in REGNETX_CONFIGS.values()])
        tag = "custom"
    else:
        raise ValueError(
            f"`config` must be one of {sorted(REGNETX_CONFIGS)} or a tuple (depths, widths, "
            f"group_width) of positive integers. Received: config={config!r}"
        )
    return skeleton.Architecture(
        f"{'g_ghost_' if ghost else ''}regnetx_{tag}",
        body=functools.partial(_body, depths, widths, group_width, ghost, ghost_ratio, mix),
    )


def _variant(config, ghost, params, macs):
    title = f"{'G-Ghost-' if ghost else ''}RegNetX-{PAPER_NAMES[config]}"
    depths, widths, gw = REGNETX_CONFIGS[config]
    doc = (
        f"Instantiates {title} (paper Table 18): depths {depths}, widths {widths}, "
        f"group width {gw}; {params} parameters and {macs} multiply-adds at 224x224.\n"
        + skeleton.args_doc(imagenet=True)
    )
    name = f"{'g_ghost_' if ghost else ''}regnetx_{config}"
    return skeleton.variant(
        regnetx,
        name,
        f"{'GGhost' if ghost else ''}RegNetX{config}",
        doc,
        config=config,
        ghost=ghost,
    )


GGhostRegNetX032 = _variant("032", True, "10,511,000", "1.802G")
GGhostRegNetX040 = _variant("040", True, "15,726,268", "2.228G")
GGhostRegNetX080 = _variant("080", True, "24,586,928", "4.150G")
GGhostRegNetX160 = _variant("160", True, "32,381,704", "8.997G")
RegNetX032 = _variant("032", False, "15,296,552", "3.2G")
RegNetX040 = _variant("040", False, "22,118,248", "4.0G")
RegNetX080 = _variant("080", False, "39,572,648", "8.0G")
RegNetX160 = _variant("160", False, "54,278,536", "16.0G")
