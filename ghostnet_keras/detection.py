"""RetinaNet detectors over the package's backbones, with keras-hub (the ``hub`` extra).

The paper's detection rows, built the way the paper built them (RetinaNet, the backbone a
drop-in replacement for ResNet, feature pyramid levels P3-P7):

    from ghostnet_keras import detection

    # Table 10: C-GhostNet-1.1x (164M backbone FLOPs at 224x224)
    detector = detection.retinanet("ghostnet_110", num_classes=80)
    # Table 19: G-Ghost RegNetX-3.2GF, from its ImageNet weights
    detector = detection.retinanet("g_ghost_regnetx_032", num_classes=80, weights="imagenet")

The result is a ``keras_hub.models.RetinaNetObjectDetector``: ``fit`` takes 0-255 RGB images
and ``{"boxes": (batch, n, 4), "labels": (batch, n)}`` (padding boxes and labels ``-1``),
``predict`` returns ``{"boxes", "confidence", "labels", "num_detections"}`` after
non-maximum suppression; both on any Keras backend. ``training.detect`` trains one on a folder
of images with a COCO JSON and reports COCO mAP (docs/detection.md).
"""

import re

from ghostnet_keras import constants, extras

HUB_PURPOSE = "RetinaNet detectors (keras-hub)"
# The feature pyramid of the paper's RetinaNet (Lin et al., 2017): P3-P7, P6 and P7 computed
# from the backbone's last feature map (use_p5=False), as keras-hub's RetinaNet presets.
MIN_LEVEL = 3
MAX_LEVEL = 7
MIN_SIZE = 32  # the stride of the backbone's last feature map (P5)
# keras-hub's RetinaNet anchors: 3 scales x 3 aspect ratios, side anchor_size x stride.
ANCHOR_SIZE = 4.0
ASPECT_RATIOS = (0.5, 1.0, 2.0)
NUM_SCALES = 3
# A C-GhostNet at any width, e.g. ghostnet_110 for Table 10's 1.1x (no published weights).
_WIDTH_NAME = re.compile(r"^ghostnet_(\d{3})$")
# The classification head's starting foreground probability (Lin et al., 2017, section 4.1).
PRIOR_PROBABILITY = 0.01
HEAD_INIT_STDDEV = 0.01  # the heads' kernels (the same section)
BOUNDING_BOX_FORMATS = ("yxyx", "xyxy", "xywh", "center_xywh", "center_yxhw", "rel_yxyx")


def _hub():
    """``ghostnet_keras.hub`` (keras-hub's backbones of the package), or the extra's error."""
    extras.require("keras_hub", "hub", HUB_PURPOSE)
    from ghostnet_keras import hub

    return hub


def _registered(name):
    from ghostnet_keras import registry

    return name in registry.list_models()


def backbone(name, weights=None, image_shape=(None, None, 3)):
    """The keras-hub ``FeaturePyramidBackbone`` (``ghostnet_keras.hub``) of ``name``: a
    registry name (``ghostnet_100``, ``g_ghost_regnetx_032``, ...; ``weights="imagenet"`` loads
    its published weights) or ``ghostnet_<width x 100>`` for C-GhostNet at another width
    (``ghostnet_110``: the paper's Table 10 backbone; no published weights)."""
    hub = _hub()
    if not isinstance(name, str):
        raise ValueError(f"`backbone` must be a model name. Received: backbone={name!r}")
    if _registered(name):
        return hub.backbone_from_registry(name, weights=weights, image_shape=image_shape)
    match = _WIDTH_NAME.match(name)
    if not match:
        raise ValueError(
            "`backbone` must be a registry name (ghostnet_keras.list_models()) or "
            f"ghostnet_<width x 100> such as ghostnet_110. Received: backbone={name!r}"
        )
    if weights is not None:
        raise ValueError(
            f"{name} has no published weights; pass `weights=None`. Received: weights={weights!r}"
        )
    return hub.GhostNetBackbone(width=int(match.group(1)) / 100, image_shape=image_shape)


def _normalization(name):
    if isinstance(name, str) and _registered(name):
        return _hub().normalization(name)
    return constants.IMAGENET_MEAN, constants.IMAGENET_STD


def preprocessor(image_size=None, mean=None, std=None, bounding_box_format="yxyx"):
    """keras-hub's ``RetinaNetObjectDetectorPreprocessor`` for the package's backbones, which
    take normalised images: 0-255 RGB resized to ``image_size`` (square; ``None``: kept), then
    ``(x / 255 - mean) / std`` per channel (default ImageNet's), boxes resized alike."""
    keras_hub = extras.require("keras_hub", "hub", HUB_PURPOSE)
    mean = constants.IMAGENET_MEAN if mean is None else mean
    std = constants.IMAGENET_STD if std is None else std
    scale, offset = _hub().scale_and_offset(mean, std)
    converter = keras_hub.layers.RetinaNetImageConverter(
        image_size=None if image_size is None else (image_size, image_size),
        scale=scale,
        offset=offset,
        bounding_box_format=bounding_box_format,
    )
    return keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter)


def _check(num_classes, image_size, head_conv_layers, confidence_threshold, box_format):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}"
        )
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_SIZE
    ):
        raise ValueError(
            f"`image_size` must be None or an integer of at least {MIN_SIZE} (the backbone's "
            f"stride). Received: image_size={image_size!r}"
        )
    if isinstance(head_conv_layers, bool) or head_conv_layers not in range(0, 9):
        raise ValueError(
            "`head_conv_layers` must be an integer from 0 to 8 (the paper's RetinaNet: 4). "
            f"Received: head_conv_layers={head_conv_layers!r}"
        )
    if not isinstance(confidence_threshold, int | float) or not 0 <= confidence_threshold < 1:
        raise ValueError(
            "`confidence_threshold` must be a number in [0, 1). "
            f"Received: confidence_threshold={confidence_threshold!r}"
        )
    if box_format not in BOUNDING_BOX_FORMATS:
        raise ValueError(
            f"`bounding_box_format` must be one of {BOUNDING_BOX_FORMATS}. "
            f"Received: bounding_box_format={box_format!r}"
        )


def retinanet(
    backbone_name,
    num_classes,
    image_size=None,
    weights=None,
    head_conv_layers=4,
    confidence_threshold=0.05,
    max_detections=100,
    bounding_box_format="yxyx",
    image_encoder=None,
):
    """Builds a keras-hub ``RetinaNetObjectDetector`` over a backbone of this package.

    Args:
        backbone_name: the backbone, as :func:`backbone` takes it (``ghostnet_110`` for the
            paper's Table 10, ``g_ghost_regnetx_032`` for Table 19, any registry name).
        num_classes: the object classes (no background class).
        image_size: the square side the preprocessor resizes images to, and the model's
            input shape; ``None`` (default) keeps any size (a multiple of 128 is best: the
            stride of P7).
        weights: ``None`` or ``"imagenet"`` (the backbone's published weights).
        head_conv_layers: the 3x3 convolutions (256 filters) of each prediction head before
            its output; 4 in the paper's RetinaNet, fewer for a quicker CPU training.
        confidence_threshold: the lowest score ``predict`` keeps (before non-maximum
            suppression at IoU 0.5); 0.05 by default, the COCO evaluation's usual setting.
        max_detections: the most boxes ``predict`` returns per image.
        bounding_box_format: the format of ``fit``'s boxes and ``predict``'s (pixels).
        image_encoder: instead of ``backbone_name``'s, this keras-hub
            ``FeaturePyramidBackbone`` (P3-P5 needed); ``backbone_name`` then only picks the
            normalisation.

    Returns:
        A compiled ``keras_hub.models.RetinaNetObjectDetector`` (keras-hub's defaults: focal
        loss, Huber box loss; compile it again to change them) with its preprocessor.
    """
    keras_hub = extras.require("keras_hub", "hub", HUB_PURPOSE)
    _check(num_classes, image_size, head_conv_layers, confidence_threshold, bounding_box_format)
    shape = (image_size, image_size, 3) if image_size else (None, None, 3)
    if image_encoder is None:
        image_encoder = backbone(backbone_name, weights=weights, image_shape=shape)
    pyramid = keras_hub.models.RetinaNetBackbone(
        image_encoder=image_encoder,
        min_level=MIN_LEVEL,
        max_level=MAX_LEVEL,
        use_p5=False,
        image_shape=shape,
    )
    anchors = keras_hub.layers.AnchorGenerator(
        bounding_box_format,
        min_level=MIN_LEVEL,
        max_level=MAX_LEVEL,
        num_scales=NUM_SCALES,
        aspect_ratios=list(ASPECT_RATIOS),
        anchor_size=ANCHOR_SIZE,
    )
    decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format=bounding_box_format,
        from_logits=True,
        confidence_threshold=confidence_threshold,
        max_detections=max_detections,
    )
    mean, std = _normalization(backbone_name)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=pyramid,
        num_classes=num_classes,
        bounding_box_format=bounding_box_format,
        anchor_generator=anchors,
        pre_logits_num_conv_layers=head_conv_layers,
        preprocessor=preprocessor(image_size, mean, std, bounding_box_format),
        prediction_decoder=decoder,
    )
    _initialize_heads(detector)
    return detector


def _initialize_heads(detector):
    """The RetinaNet paper's start (Lin et al., 2017, section 4.1): every head convolution's
    kernel drawn from N(0, HEAD_INIT_STDDEV^2) and its bias 0, except the classification
    logits' bias ``-log((1 - p) / p)`` (every anchor's score ``p = PRIOR_PROBABILITY``).
    keras-hub 0.32 draws the kernels with a standard deviation of 0.05 and gives the prior
    bias to the box head instead of the classification head: an untrained detector's scores
    start near 0.5 and its boxes at ``exp(-4.6)`` times their anchors, and training starts with
    losses in the tens (measured here: a classification loss of 34 on the first batch)."""
    import math

    keras = extras.require_keras(HUB_PURPOSE)
    prior = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
    kernel_init = keras.initializers.RandomNormal(stddev=HEAD_INIT_STDDEV)
    for head in (detector.classification_head, detector.box_head):
        for conv in [*head.conv_layers, head.prediction_layer]:
            conv.kernel.assign(kernel_init(tuple(conv.kernel.shape)))
            if conv.bias is not None:
                last = head is detector.classification_head and conv is head.prediction_layer
                conv.bias.assign(keras.ops.full(tuple(conv.bias.shape), prior if last else 0.0))
