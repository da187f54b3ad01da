"""ResNet with C-Ghost convolutions or G-Ghost stages (paper Tables 7, 11 and 15).

Reference:
- [GhostNets on Heterogeneous Devices via Cheap Operations](https://arxiv.org/abs/2201.03297)
  (IJCV 2022); [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385).

One builder, :func:`resnet`, makes every variant from a depth table (``RESNET_CONFIGS``):

- plain ResNet34/50 (torchvision layout: 7x7 stride-2 stem + 3x3 max pool, stride on the
  3x3 conv of the bottleneck, 1x1 conv + BN projection shortcuts) and the CIFAR ResNet56
  (3x3 stem to 16 channels, three stages of nine basic blocks 16/32/64 wide);
- ``conv_ratio=s``: every convolution (with its BN) is a C-Ghost module of ratio ``s``
  (``blocks.ghost_module``, primary kernel and stride = the replaced conv's, 3x3 depthwise
  cheap op), through the blocks' ``conv_fn`` hook: Ghost-ResNet50 (Table 7) and
  Ghost-ResNet56 (Table 4);
- ``ghost_ratio=lambda``: every stage is a G-Ghost stage (``blocks.g_ghost_stage``, basic
  blocks, 1x1 conv cheap operation, with or without mix): G-Ghost-ResNet34 (Table 15) and
  G-Ghost-ResNet56 (Table 11).

The CIFAR ResNet56 variants keep some of these arguments open, as keyword overrides of their
fixed values, for the paper's ablations of them (``OVERRIDE_DOCS``): ``ResNet56(width=0.7)``
(Table 11's ResNet56-0.7x), ``GhostResNet56(conv_ratio=3)``,
``GGhostResNet56NoMix(cheap_op="identity")`` (Tables 13, 14), ``ghost_ratio=0.3`` (Figure 11).

Choices the paper leaves open, and their reason:

- CIFAR ResNet56 shortcuts are 1x1 conv + BN projections (option B) rather than the
  zero-padding option A of He et al.: it is the same shortcut as the ImageNet models, needs
  no custom layer, and costs 2,752 parameters (0.86M instead of 0.85M, within 1%).
- Ghost-ResNet50's classifier is a C-Ghost module too (``ghost_classifier=True``: a 1x1
  primary conv to ``ceil(classes / s)`` maps + BN and a 3x3 depthwise cheap op + BN on the
  pooled 1x1 map, the two concatenated into the logits). The paper replaces "all the
  convolutional layers"; only with the classifier counted as one (a 1x1 conv on the pooled
  features) do its 13.0M (s=2) and 6.5M (s=4) parameters come out: with a dense classifier
  (2.05M parameters) they would be 14.0M and 7.9M. ``ghost_classifier=False`` keeps the
  dense classifier.
- The stem conv of the Ghost-ResNets (on the 3 RGB channels) stays a plain conv, as in
  C-GhostNet (``ghost_stem=True`` makes it a C-Ghost module too). Table 7's FLOPs need it:
  2.150G (s=2) and 1.180G (s=4) against the paper's 2.2G and 1.2G; with a C-Ghost stem they
  would be 2.095G and 1.097G (-5% and -9%).
- Ghost-ResNet56 (s=2) has 0.440M parameters and 65.5M MACs against the paper's 0.43M / 63M
  (+2.3% / +3.9%). The 63M is about half of ResNet56's 125M; the 54 C-Ghost modules' 3x3
  depthwise cheap operations, which the paper's own Eq. 4 counts, add 2.3M MACs to that half.
  No layout of the network that keeps those cheap operations reaches 63M.
- ``width`` multiplies the stem and every stage width and rounds each to the nearest
  multiple of 2 (``WIDTH_DIVISOR``). The paper's ResNet56-0.7x (Table 11: 0.41M / 63.3M) is
  then 12/22/44 wide with a 12-channel stem: 0.410M / 63.4M (409,646 / 63,430,072; with He et
  al.'s zero-padding shortcuts instead of our projections, 63.3M exactly). Rounding to the
  nearest integer (11/22/45) would give 60.4M (-4.6%).
- G-Ghost-ResNet56 reads all channels of each stage's first block in its first thin block and
  its cheap operation (``full_input=True``, paper Eq. 8-9: ``L'_2(Y_1)`` and ``C(Y_1)``), not
  the slices of the official G-Ghost RegNet code. Only this reading meets Tables 11, 13 and
  14 (with mix 0.378M / 54.0M vs 0.37M / 53.8M; without 0.364M / 54.0M vs 0.36M / 53.7M;
  identity cheap op 0.361M / 53.6M vs 0.36M / 53.3M; no cheap op 0.413M / 61.1M vs 0.41M /
  60.8M; 3x3 cheap op 0.385M / 57.1M vs 0.38M / 56.9M; 5x5 cheap op 0.428M / 63.4M vs 0.43M /
  63.2M); with the slices the FLOPs are 4% low (51.6M) and the 3x3 cheap op misses by 6.5%.
  G-Ghost-ResNet34 is the other way round: the slices give Table 15 (14.71M / 2.29G with
  mix, 14.31M without, vs 14.6M / 14.3M / 2.3B), reading all channels would give 15.6M (+7%).
"""

import functools
import textwrap

from keras import layers

from ghostnet_keras import blocks, catalog, skeleton

# name: (block, depths, output widths per stage, stem, default input size, default classes)
RESNET_CONFIGS = {
    "resnet34": ("basic", (3, 4, 6, 3), (64, 128, 256, 512), "imagenet", 224, 1000),
    "resnet50": ("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048), "imagenet", 224, 1000),
    "resnet56": ("basic", (9, 9, 9), (16, 32, 64), "cifar", 32, 10),
}
STEM_FILTERS = {"imagenet": 64, "cifar": 16}
# A width multiplier rounds every width to the nearest multiple of this: ResNet56-0.7x is then
# 12/22/44 wide (stem 12), the paper's 0.41M / 63.3M (Table 11; see the module docstring).
WIDTH_DIVISOR = 2


def _block_fn(block, conv_fn):
    if block == "basic":

        def fn(x, filters, strides=1, name=None):
            return blocks.basic_block(x, filters, strides, conv_fn=conv_fn, name=name)

    else:

        def fn(x, filters, strides=1, name=None):
            return blocks.bottleneck_block(
                x, filters, strides, expansion=4, conv_fn=conv_fn, name=name
            )

    return fn


def _ghost_classifier(ratio):
    """The classifier as a C-Ghost module on the pooled 1x1 map (see the module docstring)."""

    def classifier(x, classes, classifier_activation):
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = blocks.ghost_module(x, classes, ratio=ratio, relu=False, name="classifier")
        x = layers.Flatten(name="classifier_flatten")(x)
        return layers.Activation(classifier_activation, name="predictions")(x)

    return classifier


def _body(block, depths, widths, stem, stem_filters, conv_fn, stem_conv_fn, stage_options, x):
    if stem == "imagenet":
        x = stem_conv_fn(x, stem_filters, 7, strides=2, name="conv1")
        # PyTorch pads the max pool with -inf; after the ReLU zeros are the same.
        x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    else:
        x = stem_conv_fn(x, stem_filters, 3, name="conv1")
    block_fn = _block_fn(block, conv_fn)
    for k, (depth, width) in enumerate(zip(depths, widths, strict=True), start=1):
        x = blocks.g_ghost_stage(
            x,
            block_fn,
            depth,
            width,
            strides=1 if k == 1 else 2,
            name=f"layer{k}",
            **stage_options,
        )
    return x


@skeleton.family(classes=None, dropout_rate=0.0)
def resnet(
    config,
    conv_ratio=1,
    ghost_ratio=0.0,
    cheap_op="conv1x1",
    mix=True,
    full_input=False,
    ghost_stem=False,
    ghost_classifier=None,
    width=1.0,
    *application,
):
    """Builds ResNet ``config`` ("resnet34", "resnet50", "resnet56") and its Ghost variants.

    Args:
        config: a key of ``RESNET_CONFIGS``, or a tuple ``(block, depths, widths,
            stem)`` for another depth/width ("basic"/"bottleneck", "imagenet"/"cifar").
        conv_ratio: C-Ghost ratio ``s`` of every conv (1: plain convolutions).
        ghost_ratio: G-Ghost ratio ``lambda`` of every stage (0: plain stages).
        cheap_op: the G-Ghost cheap operation ("conv1x1", "conv3x3", "conv5x5",
            "identity", "none"; paper Tables 13 and 14).
        mix: whether the G-Ghost stages have the mix operation.
        full_input: G-Ghost stages whose first thin block and cheap op read all
            channels of the first block's output (paper Eq. 8-9; see
            ``blocks.g_ghost_stage``).
        ghost_stem: with ``conv_ratio > 1``, whether the stem conv is a C-Ghost
            module too (default: it stays a plain conv).
        ghost_classifier: the classifier as a C-Ghost module; defaults to
            ``conv_ratio > 1``.
        width: multiplies the stem and stage widths, each rounded to the nearest
            multiple of ``WIDTH_DIVISOR`` (2): 0.7 is the paper's ResNet56-0.7x
            (Table 11). A width other than 1 appends it to the model name
            (``resnet56_070``).
        classes: defaults to 1000 (ImageNet models) or 10 (CIFAR ResNet56).
        The other arguments are those of ``keras.applications``.
    """
    if isinstance(config, str) and config in RESNET_CONFIGS:
        block, depths, widths, stem, default_size, default_classes = RESNET_CONFIGS[config]
        model_name = config
    elif (
        isinstance(config, (tuple, list))
        and len(config) == 4
        and config[0] in ("basic", "bottleneck")
        and config[3] in STEM_FILTERS
        and len(config[1]) == len(config[2]) > 0
        and all(isinstance(v, int) and v > 0 for v in (*config[1], *config[2]))
    ):
        block, depths, widths, stem = config
        skeleton.check_stages(config, depths, widths, [c[1:3] for c in RESNET_CONFIGS.values()])
        default_size, default_classes = (32, 10) if stem == "cifar" else (224, 1000)
        model_name = "resnet_custom"
    else:
        raise ValueError(
            f"`config` must be one of {sorted(RESNET_CONFIGS)} or a tuple (block, depths, "
            "widths, stem) with block 'basic' or 'bottleneck', positive integer depths and "
            f"widths, and stem 'imagenet' or 'cifar'. Received: config={config!r}"
        )
    width = skeleton.check_width(width)
    skeleton.check_choice("cheap_op", cheap_op, blocks.CHEAP_OPS)
    stem_filters = STEM_FILTERS[stem]
    if width != 1:
        stem_filters, *widths = (
            blocks.make_divisible(w * width, WIDTH_DIVISOR) for w in (stem_filters, *widths)
        )
        model_name = skeleton.width_name(model_name, width)
    if int(conv_ratio) != conv_ratio or conv_ratio < 1:
        raise ValueError(
            f"`conv_ratio` must be an integer >= 1. Received: conv_ratio={conv_ratio!r}"
        )
    conv_fn = blocks.ghost_conv(int(conv_ratio)) if conv_ratio > 1 else blocks.conv_norm
    stem_conv_fn = conv_fn if ghost_stem else blocks.conv_norm
    stage = {"ghost_ratio": ghost_ratio, "cheap_op": cheap_op, "mix": mix, "full_input": full_input}
    if ghost_classifier is None:
        ghost_classifier = conv_ratio > 1
    return skeleton.Architecture(
        model_name,
        body=functools.partial(
            _body, block, depths, widths, stem, stem_filters, conv_fn, stem_conv_fn, stage
        ),
        classifier=_ghost_classifier(int(conv_ratio)) if ghost_classifier else None,
        default_size=default_size,
        default_classes=default_classes,
    )


# The family arguments a CIFAR ResNet56 variant still takes, as keyword overrides of its
# fixed values (``create_model("resnet56", width=0.7)``): the paper's ablations of it. Each
# variant takes those of its own kind of model.
OVERRIDE_DOCS = {
    "width": "multiplies the stem and stage widths (each rounded to the nearest multiple of "
    "2); 0.7 is the paper's ResNet56-0.7x (Table 11).",
    "conv_ratio": "the C-Ghost ratio `s` of every conv (default {default}).",
    "ghost_ratio": "the G-Ghost ratio lambda of every stage (default {default}; Figure 11 "
    "tries 0.3 to 0.7).",
    "cheap_op": 'the G-Ghost cheap operation: "conv1x1" (default), "conv3x3", "conv5x5", '
    '"identity" or "none" (Tables 13 and 14; "none" only without mix).',
}
PLAIN_OVERRIDES = ("width",)
C_GHOST_OVERRIDES = ("conv_ratio", "width")  # in the family's order
G_GHOST_OVERRIDES = ("ghost_ratio", "cheap_op", "width")


def _overrides_doc(overrides, fixed):
    lines = []
    for arg in overrides:
        text = OVERRIDE_DOCS[arg].format(default=fixed.get(arg))
        lines.append(textwrap.fill(f"{arg}: {text}", 88, subsequent_indent="        "))
    return "".join(f"    {line}\n" for line in lines)


def _variant(registry_name, function_name, config, summary, overrides=(), **variant):
    _, _, _, _, size, classes = RESNET_CONFIGS[config]
    doc = f"{summary}\n" + skeleton.args_doc(
        size=size,
        classes=classes,
        dropout_rate=0.0,
        imagenet=catalog.has_weights(registry_name),
        extra=_overrides_doc(overrides, variant),
    )
    return skeleton.variant(
        resnet,
        registry_name,
        function_name,
        doc,
        overrides=overrides,
        config=config,
        classes=classes,
        **variant,
    )


ResNet34 = _variant(
    "resnet34", "ResNet34", "resnet34", "Instantiates ResNet34 (torchvision layout)."
)
GGhostResNet34 = _variant(
    "g_ghost_resnet34",
    "GGhostResNet34",
    "resnet34",
    "Instantiates G-Ghost-ResNet34 with mix (paper Table 15: 14.6M / 2.3B).",
    ghost_ratio=0.5,
)
ResNet50 = _variant("resnet50", "ResNet50", "resnet50", "Instantiates ResNet50 (torchvision v1.5).")
GhostResNet50S2 = _variant(
    "ghost_resnet50_s2",
    "GhostResNet50S2",
    "resnet50",
    "Instantiates Ghost-ResNet50 (s=2): every conv a C-Ghost module (paper Table 7: 13.0M / 2.2B).",
    conv_ratio=2,
)
GhostResNet50S4 = _variant(
    "ghost_resnet50_s4",
    "GhostResNet50S4",
    "resnet50",
    "Instantiates Ghost-ResNet50 (s=4): every conv a C-Ghost module (paper Table 7: 6.5M / 1.2B).",
    conv_ratio=4,
)
ResNet56 = _variant(
    "resnet56",
    "ResNet56",
    "resnet56",
    "Instantiates the CIFAR ResNet56 (paper: 0.85M / 125M).",
    overrides=PLAIN_OVERRIDES,
)
GhostResNet56 = _variant(
    "ghost_resnet56",
    "GhostResNet56",
    "resnet56",
    "Instantiates Ghost-ResNet56 (s=2) for CIFAR (paper Table 4: 0.43M / 63M).",
    overrides=C_GHOST_OVERRIDES,
    conv_ratio=2,
)
GGhostResNet56 = _variant(
    "g_ghost_resnet56",
    "GGhostResNet56",
    "resnet56",
    "Instantiates G-Ghost-ResNet56 with mix for CIFAR (paper Table 11: 0.37M / 53.8M).",
    overrides=G_GHOST_OVERRIDES,
    ghost_ratio=0.5,
    full_input=True,
)
GGhostResNet56NoMix = _variant(
    "g_ghost_resnet56_nomix",
    "GGhostResNet56NoMix",
    "resnet56",
    "Instantiates G-Ghost-ResNet56 without mix for CIFAR (paper Table 11: 0.36M / 53.7M).",
    overrides=G_GHOST_OVERRIDES,
    ghost_ratio=0.5,
    mix=False,
    full_input=True,
)
