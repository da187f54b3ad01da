"""keras-hub models of this package's networks: backbones, image classifiers, preprocessing.

Every family of the package has a :class:`keras_hub.models.FeaturePyramidBackbone`, an
``ImageClassifier`` task, its ``ImageClassifierPreprocessor`` and an ``ImageConverter``,
registered with Keras (package ``"ghostnet_keras"``) so that ``.keras`` files load in safe
mode and ``keras_hub.models.Backbone.from_preset`` / ``ImageClassifier.from_preset`` find
them once this module is imported. The classes are generated from ``FAMILIES`` (one row per
family function); each backbone builds its graph with the family's own builder
(``include_top=False, include_preprocessing=False``), so no architecture is written twice, and
its ``pyramid_outputs`` (``"P1"`` .. ``"P5"``, strides 2 to 32) are the stage outputs that
:func:`ghostnet_keras.feature_layer_names` finds. The classifier's head is the same builder's
top (pooling, GhostNet's 1280-wide FC, the classifier), so its logits are those of
``create_model(name)`` on the same normalised image.

A backbone is made from the family function's own arguments or from a registry name::

    from ghostnet_keras import hub
    backbone = hub.GhostNetBackbone(width=1.1)               # C-GhostNet-1.1x (paper Table 10)
    backbone = hub.RegNetXBackbone(config="032", ghost=True)  # G-Ghost RegNetX-3.2GF (Table 19)
    backbone = hub.backbone_from_registry("g_ghost_regnetx_032", weights="imagenet")
    classifier = hub.classifier_from_registry("ghostnet_100", weights="imagenet")

Backbones take normalised images (``(x / 255 - mean) / std``); the image converter does that
from 0-255 RGB with the weights entry's mean and std, after the evaluation centre crop.
"""

import functools
import importlib
import inspect
import math

import keras
from keras import ops

from ghostnet_keras import catalog, extras, features, pretrained, registry, skeleton
from ghostnet_keras.constants import CROP_FRACTION, IMAGENET_MEAN, IMAGENET_STD

keras_hub = extras.require("keras_hub", "hub", "the keras-hub models (ghostnet_keras.hub)")

PACKAGE = "ghostnet_keras"  # the Keras serialization package of the classes here
STRIDES = (2, 4, 8, 16, 32)  # the strides of the pyramid levels P1..P5
LEVELS = tuple(f"P{round(math.log2(s))}" for s in STRIDES)
DEFAULT_IMAGE_SHAPE = (None, None, 3)
WEIGHTS_CHOICES = (None, "imagenet")
_KERAS_ARGS = ("name", "dtype", "trainable")  # Keras's own constructor arguments
_APPLICATION = {n for n, _ in skeleton.APPLICATION_ARGS} | {"name"}
_PYRAMID_LAYERS = {}  # (backbone class, model, arguments) -> the layers of P1..P5

# One row per family function: (class name prefix, family module, family function). The
# classes of each row are made by `_declare` below; the registry's models of a module are
# built by that module's backbone. VGG (a CIFAR-10 network, 32x32) has no pyramid to offer.
FAMILIES = (
    ("GhostNet", "ghostnet", "GhostNet"),
    ("GhostNetV2", "ghostnet_v2", "GhostNetV2"),
    ("GhostNetV3", "ghostnet_v3", "GhostNetV3"),
    ("GGhostNet", "g_ghostnet", "GGhostNet"),
    ("RegNetX", "regnet", "regnetx"),
    ("ResNet", "resnet", "resnet"),
)
NO_BACKBONE = ("vgg",)


def family_function(module, family):
    """The family builder ``ghostnet_keras.<module>.<family>``."""
    return getattr(importlib.import_module(f"ghostnet_keras.{module}"), family)


def own_arguments(builder):
    """The arguments of ``builder`` that are not ``keras.applications`` ones (``width``,
    ``config``, ``variant``...), in order."""
    return [p for p in inspect.signature(builder).parameters if p not in _APPLICATION]


def _check_weights(weights):
    if weights not in WEIGHTS_CHOICES:
        raise ValueError(f"`weights` must be None or 'imagenet'. Received: weights={weights!r}")


def _check_image_shape(image_shape):
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(d is None or (isinstance(d, int) and d > 0) for d in shape)
        or shape[-1] is None
    ):
        raise ValueError(
            "`image_shape` must be (height, width, channels), height and width positive "
            f"integers or None. Received: image_shape={image_shape!r}"
        )
    return shape


def scale_and_offset(mean, std):
    """keras-hub's ``scale`` and ``offset`` (``x * scale + offset`` on 0-255 RGB) of the
    normalisation ``(x / 255 - mean) / std``."""
    return [1.0 / (255.0 * s) for s in std], [-m / s for m, s in zip(mean, std, strict=True)]


def _registry_name(name):
    """The registry name of a weights name (``ghostnet_130.ssld`` -> ``ghostnet_130``)."""
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a registry name (str). Received: name={name!r}")
    return name.split(".", 1)[0]


class GhostNetKerasBackbone(keras_hub.models.FeaturePyramidBackbone):
    """The backbone of one family of ghostnet-keras (see the family classes, e.g.
    :class:`GhostNetBackbone`), built by the family's own builder without its top and
    without the normalisation in the graph.

    Args:
        model: a registry name of this family (``"ghostnet_100"``), or ``None`` to build
            from the family function's own arguments (``**arguments``).
        image_shape: ``(height, width, channels)`` of the normalised input images;
            height and width may be ``None``. Defaults to ``(None, None, 3)``.
        **arguments: the family function's own arguments (``width=1.1``,
            ``config="032", ghost=True``...); with ``model``, those its builder still takes
            (``variant``). Also Keras's ``name``, ``dtype`` and ``trainable``.

    Outputs the last feature map; ``pyramid_outputs`` holds ``"P1"`` .. ``"P5"`` (strides
    2 to 32), the last stage output at each stride.
    """

    module = None  # the family module (set on each family's class)
    family = None  # the family function's name in that module

    def __init__(self, model=None, image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
        keras_kwargs = {k: kwargs.pop(k) for k in _KERAS_ARGS if k in kwargs}
        builder = self._builder(model, kwargs)
        image_shape = _check_image_shape(image_shape)
        inputs = keras.Input(shape=image_shape, name="images")
        source = builder(
            include_top=False, include_preprocessing=False, weights=None, input_tensor=inputs
        )
        key = (type(self).__name__, model, repr(sorted(kwargs.items())))
        if key not in _PYRAMID_LAYERS:  # found on a copy of the graph: once per architecture
            _PYRAMID_LAYERS[key] = features.feature_layer_names(source, STRIDES)
        names = _PYRAMID_LAYERS[key]
        super().__init__(inputs=inputs, outputs=source.output, **keras_kwargs)
        self.pyramid_outputs = {
            level: source.get_layer(n).output for level, n in zip(LEVELS, names, strict=True)
        }
        self.registry_name = model
        self.arguments = dict(kwargs)
        self.image_shape = image_shape
        self.feature_layer = source.layers[-1].name

    @classmethod
    def _builder(cls, model, arguments):
        """The builder ``fn(**application arguments) -> keras.Model`` of this backbone."""
        if model is not None:
            row = catalog.MODELS.get(model) if isinstance(model, str) else None
            if row is None or row.module != cls.module:
                known = [n for n, m in catalog.MODELS.items() if m.module == cls.module]
                raise ValueError(
                    f"`model` must be a registry name of the {cls.__name__} family "
                    f"({', '.join(known)}). Received: model={model!r}"
                )
            taken = own_arguments(registry.get_builder(model))  # loads the family modules
            builder = functools.partial(registry.create_model, model)
        else:
            builder = family_function(cls.module, cls.family)
            taken = own_arguments(builder)
        unknown = sorted(set(arguments) - set(taken))
        if unknown:
            raise ValueError(
                f"{cls.__name__} takes no argument {', '.join(map(repr, unknown))}"
                f"{' with model=' + repr(model) if model else ''}; it takes: "
                f"{', '.join(['model', 'image_shape', *taken])}. Received: "
                + ", ".join(f"{k}={arguments[k]!r}" for k in unknown)
            )
        return functools.partial(builder, **arguments)

    def head(self, num_classes=skeleton.IMAGENET_CLASSES, activation=None, dropout=None):
        """The builder's top over this backbone's output, as a ``keras.Model``: global
        pooling, the family's hidden FC if it has one, dropout (``None``: the family's
        default) and the classifier with ``activation`` (``None``: logits)."""
        builder = self._builder(self.registry_name, self.arguments)
        top = {"dropout_rate": dropout} if dropout is not None else {}
        full = builder(
            include_top=True,
            include_preprocessing=False,
            weights=None,
            input_shape=self.image_shape,
            classes=num_classes,
            classifier_activation=activation,
            **top,
        )
        top_graph = keras.Model(full.get_layer(self.feature_layer).output, full.output)
        # The same layers on an input of their own (the cut's is named after a tensor).
        features_input = keras.Input(shape=self.output.shape[1:], name="features")
        head = keras.models.clone_model(
            top_graph, input_tensors=features_input, clone_function=lambda layer: layer
        )
        return keras.Model(head.inputs, head.outputs, name="classifier_head")

    @classmethod
    def from_registry(cls, name, weights="imagenet", image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
        """The backbone of the registry model ``name`` (``"ghostnet_100"``, or a weights
        name ``"ghostnet_130.ssld"``), with its published ImageNet weights (``weights=
        "imagenet"``, converted through ``create_model(name, weights="imagenet")``'s path)
        or none (``weights=None``). Called on the base class, picks the family's class."""
        return _from_registry(cls, name, weights, image_shape, kwargs)[0]

    def get_config(self):
        config = super().get_config()
        config.update({"model": self.registry_name, "image_shape": self.image_shape})
        config.update(self.arguments)
        return config


class GhostNetKerasImageConverter(keras_hub.layers.ImageConverter):
    """0-255 RGB images to a backbone's input: the evaluation centre crop, then
    ``(x / 255 - mean) / std``.

    The crop is that of the package's evaluation (resize the short side to
    ``floor(image_size / crop_fraction)``, cut the central square): the central window of
    that size is cut from the image and resized to ``image_size`` (bilinear, antialiased).
    An image whose short side is at most ``image_size`` is resized whole, and with
    ``image_size=None`` images are only normalised.

    Args:
        image_size: ``(height, width)`` of the output, or ``None``.
        mean, std: the normalisation of the weights (RGB, for images scaled to [0, 1]).
        crop_fraction: the evaluation crop (image side / resize side), in (0, 1].
        **kwargs: those of ``keras_hub.layers.ImageConverter`` (``interpolation``,
            ``antialias``...), except ``scale`` and ``offset``, which ``mean`` and ``std`` set.
    """

    def __init__(
        self,
        image_size=(224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_fraction=CROP_FRACTION,
        antialias=True,
        **kwargs,
    ):
        for arg in ("scale", "offset"):
            if arg in kwargs:
                raise ValueError(
                    f"`{arg}` is set by `mean` and `std`; pass those instead. "
                    f"Received: {arg}={kwargs[arg]!r}"
                )
        if not isinstance(crop_fraction, (int, float)) or not 0 < crop_fraction <= 1:
            raise ValueError(
                f"`crop_fraction` must be a number in (0, 1]. Received: crop_fraction="
                f"{crop_fraction!r}"
            )
        for arg, value in (("mean", mean), ("std", std)):
            if len(value) != 3 or (arg == "std" and not all(s > 0 for s in value)):
                raise ValueError(
                    f"`{arg}` must be 3 numbers (RGB){', all > 0' if arg == 'std' else ''}. "
                    f"Received: {arg}={value!r}"
                )
        scale, offset = scale_and_offset(mean, std)
        super().__init__(
            image_size=image_size,
            scale=scale,
            offset=offset,
            antialias=antialias,
            **kwargs,
        )
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_fraction = float(crop_fraction)

    def _crop(self, images):
        """The centre window of the evaluation crop (see the class docstring)."""
        height, width = ops.shape(images)[-3], ops.shape(images)[-2]
        size = self.image_size
        if height is None or width is None or not isinstance(height + width, int):
            return images  # a dynamic shape: resized whole
        short = min(height, width)
        if short <= min(size):
            return images
        resized = math.floor(min(size) / self.crop_fraction)
        crop_h = min(height, round(size[0] * short / resized))
        crop_w = min(width, round(size[1] * short / resized))
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return images[..., top : top + crop_h, left : left + crop_w, :]

    def call(self, inputs):
        if self.image_size is not None and not isinstance(inputs, dict):
            inputs = self._crop(ops.convert_to_tensor(inputs))
        return super().call(inputs)

    def get_config(self):
        config = super().get_config()
        del config["scale"], config["offset"]
        config.update({"mean": self.mean, "std": self.std, "crop_fraction": self.crop_fraction})
        return config


class GhostNetKerasImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    """The preprocessor of a ghostnet-keras image classifier (its image converter)."""


class GhostNetKerasImageClassifier(keras_hub.models.ImageClassifier):
    """An image classifier over a ghostnet-keras backbone, with the family's own top.

    Args:
        backbone: a backbone of this family (e.g. :class:`GhostNetBackbone`).
        num_classes: the number of classes (default 1000).
        preprocessor: its ``ImageClassifierPreprocessor`` or ``None``.
        activation: the classifier's activation; ``None`` (default) gives logits.
        dropout: dropout before the classifier; ``None``: the family's default.
        **kwargs: Keras's ``name``, ``dtype``...

    The head is the builder's top (pooling, GhostNet's 1280-wide FC with its ReLU, the
    classifier) on the backbone's last feature map, so that with the same weights its logits
    are those of ``create_model(name, include_preprocessing=False)``.
    """

    def __init__(
        self,
        backbone,
        num_classes=skeleton.IMAGENET_CLASSES,
        preprocessor=None,
        activation=None,
        dropout=None,
        **kwargs,
    ):
        if not isinstance(backbone, GhostNetKerasBackbone):
            raise ValueError(
                "`backbone` must be a ghostnet_keras.hub backbone. "
                f"Received: backbone={type(backbone).__name__}"
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.classifier_head = backbone.head(num_classes, activation, dropout)
        inputs = backbone.input
        outputs = self.classifier_head(backbone(inputs))
        # The head is the family's, not ImageClassifier's (pooler, dropout, dense): its
        # constructor is skipped for that of Task.
        keras_hub.models.Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.activation = activation
        self.dropout = dropout
        self.pooling = "avg"

    def get_config(self):
        config = keras_hub.models.Task.get_config(self)
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": self.activation,
                "dropout": self.dropout,
            }
        )
        return config

    @classmethod
    def from_registry(cls, name, weights="imagenet", image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
        """The classifier of the registry model ``name`` (or weights name
        ``"ghostnet_130.ssld"``) with its published ImageNet weights (``weights="imagenet"``)
        or none, and the preprocessor of its weights entry (mean, std, crop, input size).
        ``kwargs`` go to the classifier (``activation="softmax"`` for probabilities)."""
        _check_weights(weights)
        backbone_cls = backbone_class(name)
        target = _CLASSIFIERS[backbone_cls] if cls is GhostNetKerasImageClassifier else cls
        backbone, reference = _from_registry(backbone_cls, name, weights, image_shape, {})
        preprocessor = target.preprocessor_cls(image_converter=image_converter(name))
        classifier = target(backbone, preprocessor=preprocessor, **kwargs)
        if reference is not None:
            skip = [layer.name for layer in backbone.layers]
            pretrained.copy_weights(reference, classifier.classifier_head, skip=skip)
        return classifier


def _from_registry(cls, name, weights, image_shape, kwargs):
    """``(backbone, the full model holding its ImageNet weights or None)`` of ``name``."""
    _check_weights(weights)
    target = backbone_class(name) if cls is GhostNetKerasBackbone else cls
    entry = pretrained.check_available(name) if weights == "imagenet" else None
    if entry is not None and entry.variant is not None:
        kwargs = {"variant": entry.variant, **kwargs}
    backbone = target(model=_registry_name(name), image_shape=image_shape, **kwargs)
    if entry is None:
        return backbone, None
    reference = pretrained.imagenet_model(name)
    pretrained.copy_weights(reference, backbone, skip=pretrained.HEAD_LAYERS)
    return backbone, reference


def image_converter(name, **kwargs):
    """The image converter of the registry model (or weights name) ``name``: its weights
    entry's mean, std, crop fraction and input size (ImageNet's and 224 without weights)."""
    model = _registry_name(name)
    converter_cls = _CONVERTERS[backbone_class(model)]
    entry = pretrained.get_entry(name)
    if entry is None:
        return converter_cls(**kwargs)
    found = {
        "image_size": (entry.input_size, entry.input_size),
        "mean": entry.mean,
        "std": entry.std,
        "crop_fraction": entry.crop_fraction,
    }
    return converter_cls(**{**found, **kwargs})


def normalization(name):
    """``(mean, std)`` (RGB, [0, 1] images) the backbone of ``name`` expects: its weights
    entry's, or ImageNet's."""
    entry = pretrained.get_entry(name)
    return (entry.mean, entry.std) if entry else (IMAGENET_MEAN, IMAGENET_STD)


def _register(cls):
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def _declare(prefix, module, family):
    """The four classes of one family: its backbone, image converter, preprocessor and
    classifier, linked as keras-hub's ``from_preset`` finds them, and registered."""
    doc = (
        f"The keras-hub backbone of ghostnet_keras.{module}.{family}: its own arguments "
        f"(`{family}`'s, e.g. {', '.join(own_arguments(family_function(module, family)))}) "
        "or `model=<registry name>`.\n\n" + GhostNetKerasBackbone.__doc__.split("\n\n", 1)[1]
    )
    backbone = _register(
        type(f"{prefix}Backbone", (GhostNetKerasBackbone,), {"module": module, "family": family})
    )
    backbone.__doc__, backbone.__module__ = doc, __name__
    converter = _register(
        type(f"{prefix}ImageConverter", (GhostNetKerasImageConverter,), {"backbone_cls": backbone})
    )
    preprocessor = _register(
        type(
            f"{prefix}ImageClassifierPreprocessor",
            (GhostNetKerasImageClassifierPreprocessor,),
            {"backbone_cls": backbone, "image_converter_cls": converter},
        )
    )
    classifier = _register(
        type(
            f"{prefix}ImageClassifier",
            (GhostNetKerasImageClassifier,),
            {"backbone_cls": backbone, "preprocessor_cls": preprocessor},
        )
    )
    for made, base in (
        (converter, GhostNetKerasImageConverter),
        (preprocessor, GhostNetKerasImageClassifierPreprocessor),
        (classifier, GhostNetKerasImageClassifier),
    ):
        made.__module__ = __name__
        made.__doc__ = f"{base.__doc__.splitlines()[0]} (the {prefix} family's)."
    return backbone, converter, preprocessor, classifier


# The classes of every family, as module attributes: <prefix>Backbone, <prefix>ImageConverter,
# <prefix>ImageClassifierPreprocessor and <prefix>ImageClassifier (GhostNetBackbone, ...).
_BACKBONES, _CONVERTERS, _CLASSIFIERS = {}, {}, {}
__all__ = ["backbone_class", "backbone_from_registry", "classifier_from_registry"]
for _prefix, _module, _family in FAMILIES:
    _made = _declare(_prefix, _module, _family)
    _BACKBONES[_module] = _made[0]
    _CONVERTERS[_made[0]], _CLASSIFIERS[_made[0]] = _made[1], _made[3]
    globals().update({cls.__name__: cls for cls in _made})
    __all__ += [cls.__name__ for cls in _made]
del _prefix, _module, _family, _made


def backbone_class(name):
    """The backbone class that builds the registry model ``name``."""
    row = catalog.MODELS.get(_registry_name(name))
    found = _BACKBONES.get(row.module) if row else None
    if found is None:
        registry.get_builder(name)  # an unknown name: the registry's error, with close matches
        raise ValueError(
            f"{name!r} has no keras-hub backbone: its family ({row.module}) has no feature "
            f"pyramid at strides {STRIDES}. Received: name={name!r}"
        )
    return found


def backbone_from_registry(name, weights="imagenet", image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
    """``GhostNetKerasBackbone.from_registry``: the backbone of the registry model ``name``
    in its family's class, with its ImageNet weights (``weights="imagenet"``) or none."""
    return GhostNetKerasBackbone.from_registry(name, weights, image_shape, **kwargs)


def classifier_from_registry(name, weights="imagenet", image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
    """``GhostNetKerasImageClassifier.from_registry``: the classifier (and preprocessor) of
    the registry model ``name`` in its family's class."""
    return GhostNetKerasImageClassifier.from_registry(name, weights, image_shape, **kwargs)
