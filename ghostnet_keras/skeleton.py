"""The one skeleton every model builder goes through, and the one variant factory.

A model family (C-GhostNet, G-GhostNet, ResNet, RegNetX, VGG...) writes only what is its
own: a function of its own arguments (``width``, ``config``...) that validates them and
returns an :class:`Architecture` (the registry-style model name, the body, the head). The
decorator :func:`family` makes it a ``keras.applications``-style builder, adding the standard
arguments declared once in ``APPLICATION_ARGS``; :func:`build` then does the same steps, in
the same order, for every model:

1. validate the ``keras.applications`` arguments (:func:`check_args`; every error a
   ``ValueError`` naming the argument, ``Received: arg=value``), ``weights`` first: a
   ``weights="imagenet"`` the model has no published weights for fails before anything else;
2. the input (``input_tensor`` or ``keras.Input``), then the preprocessing in the graph;
3. the family's body, then the top (pooling, optional hidden FC, dropout, classifier);
4. the weights: ImageNet (:mod:`ghostnet_keras.pretrained`) or a weights file
   (:mod:`ghostnet_keras.weights_file`).

:func:`variant` makes the fixed builders (``GhostNet100``, ``ResNet50``...): the family with
some arguments fixed, named, documented and registered under its registry name, which is also
the name of the model it builds and the key of its pretrained weights.

Example (a new family):

    @skeleton.family(dropout_rate=0.2)
    def TinyNet(width=1.0):
        width = skeleton.check_width(width)
        return skeleton.Architecture(f"tinynet_{round(width * 100):03d}", body=...)

    TinyNet100 = skeleton.variant(TinyNet, "tinynet_100", "TinyNet100", "...", width=1.0)
"""

import dataclasses
import functools
import inspect
import math
import os
from collections.abc import Callable

import keras
from keras import layers

from ghostnet_keras import weights_file
from ghostnet_keras.constants import IMAGENET_MEAN, IMAGENET_STD
from ghostnet_keras.registry import register_model

MIN_INPUT_SIZE = 32
POOLING_CHOICES = (None, "avg", "max")
IMAGENET_CLASSES = 1000

# The keras.applications arguments every builder takes, in this order, with their defaults;
# a family may change a default (e.g. ``classes=10``) through :func:`family`.
APPLICATION_ARGS = (
    ("include_top", True),
    ("weights", None),
    ("input_tensor", None),
    ("input_shape", None),
    ("pooling", None),
    ("classes", IMAGENET_CLASSES),
    ("classifier_activation", "softmax"),
    ("dropout_rate", 0.2),
    ("include_preprocessing", True),
)

_Parameter = inspect.Parameter


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a family decides from its own arguments; :func:`build` does the rest.

    Attributes:
        model_name: the registry-style name (``ghostnet_100``): the default model name and
            the key of the pretrained weights.
        body: ``body(x) -> x``, the layers from the (preprocessed) input to the last
            feature map (the output of ``include_top=False, pooling=None``).
        hidden: width of a ``Dense`` + ReLU (``head``, ``head_relu``) between the pooled
            features and the classifier (GhostNet's 1280-wide head, VGG's 512).
        hidden_norm: the hidden FC without bias, followed by BatchNorm (``head_bn``).
        classifier: ``classifier(x, classes, classifier_activation) -> output`` replacing
            the standard top when ``include_top`` (Ghost-ResNet50's C-Ghost classifier).
        preprocessing: ``preprocessing(x) -> x``, the normalisation in the graph; default
            the ImageNet mean/std of 0-255 RGB (:func:`imagenet_preprocessing`).
        default_size: the input height and width with the top and no ``input_shape``.
        default_classes: the number of classes when ``classes=None`` (``None``: no default,
            ``classes`` must be given).
        variant: the variant of the network built, for a family with a ``variant``
            argument (its ``None`` picks the one the ImageNet weights need, see :func:`family`).
        min_size: the smallest input height and width (GhostNetV2's attention: 33).
    """

    model_name: str
    body: Callable
    hidden: int | None = None
    hidden_norm: bool = False
    classifier: Callable | None = None
    preprocessing: Callable | None = None
    default_size: int = 224
    default_classes: int | None = None
    variant: str | None = None
    min_size: int = MIN_INPUT_SIZE


def width_name(prefix, width):
    """The registry-style name of a model at a width multiplier: ``ghostnet_050`` for 0.5."""
    return f"{prefix}_{round(width * 100):03d}"


# The largest width multiplier a family builds. The widest published models are 1.6x
# (GhostNetV2/V3-1.6x); 4.0 leaves 2.5 times that for experiments. Parameters grow with about
# the square of the width: C-GhostNet-4.0x has 47.9M (1.0x: 5.2M) and GhostNetV2-4.0x 62.4M,
# 0.2 GB of float32 (measured: both built in 1.3 GB of RSS with TensorFlow), where an
# unbounded width (100.0) grew past 23 GB and was killed without a word.
MAX_WIDTH = 4.0

# The most classes a head may have: ImageNet-21k's 21,841 with room to spare. A head of
# 100,000 classes on a 1280-wide C-GhostNet is 128M parameters (0.5 GB); an unbounded count
# would grow until the kernel killed the process, as an unbounded width did.
MAX_CLASSES = 100_000


def check_stages(config, depths, widths, published):
    """Bounds a custom configuration's stage depths and widths by ``MAX_WIDTH`` times the
    largest of the ``published`` ``(depths, widths)`` pairs: the same headroom as a width
    multiplier, so that a typo (a width of 10**6) is one error, not a process killed for
    memory."""
    max_depth = int(MAX_WIDTH * max(max(d) for d, _ in published))
    max_channels = int(MAX_WIDTH * max(max(w) for _, w in published))
    if max(depths) > max_depth or max(widths) > max_channels:
        raise ValueError(
            f"A custom `config` may have at most {max_depth} blocks and {max_channels} "
            f"channels a stage ({MAX_WIDTH:g}x the largest published). Received: config={config!r}"
        )


def check_width(width):
    """Validates a width multiplier: a number in (0, ``MAX_WIDTH``]. Returns it."""
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or not math.isfinite(width)
        or not 0 < width <= MAX_WIDTH
    ):
        raise ValueError(
            f"`width` must be a finite number > 0 and at most {MAX_WIDTH} (the widest "
            f"published models are 1.6x). Received: width={width!r}"
        )
    return width


def check_choice(arg, value, choices):
    """Validates that ``value`` is one of ``choices``; returns it."""
    if value not in choices:
        raise ValueError(
            f"`{arg}` must be one of {', '.join(map(repr, choices))}. Received: {arg}={value!r}"
        )
    return value


def check_weights(weights, model_name):
    """Validates ``weights``: ``None``, ``"imagenet"`` (published for ``model_name``) or a file."""
    if not (weights is None or weights == "imagenet" or isinstance(weights, (str, os.PathLike))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to a weights file. "
            f"Received: weights={weights!r}"
        )
    if weights == "imagenet":
        from ghostnet_keras import pretrained  # lazily: it reads weights, builds nothing here

        pretrained.check_available(model_name)
    elif weights is not None:
        if not os.path.isfile(weights):
            what = "is a directory, not a file" if os.path.isdir(weights) else "does not exist"
            raise ValueError(f"The `weights` file {what}. Received: weights={os.fspath(weights)!r}")
        weights_file.check_readable(weights)  # a truncated file fails before the build


def check_args(
    *,
    weights,
    include_top,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    dropout_rate=0.0,
    include_preprocessing=False,
    model_name=None,
    default_size=224,
    min_size=MIN_INPUT_SIZE,
):
    """Validates the keras.applications arguments; returns the input shape to build.

    Every error is a ``ValueError`` that names the argument and ends with
    ``Received: <arg>=<value>``.
    """
    check_weights(weights, model_name)
    _check_top_args(weights, include_top, pooling, classes, classifier_activation, dropout_rate)
    shape, arg = _requested_shape(input_tensor, input_shape, include_top, default_size)
    return _checked_shape(shape, arg, input_tensor, weights, include_preprocessing, min_size)


def _check_top_args(weights, include_top, pooling, classes, classifier_activation, dropout_rate):
    """Validates the arguments of the model's top (see :func:`check_args`)."""
    if pooling not in POOLING_CHOICES:
        raise ValueError(
            f"`pooling` must be one of None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= MAX_CLASSES:
        raise ValueError(
            f"`classes` must be a positive integer, at most {MAX_CLASSES:,}. "
            f"Received: classes={classes!r}"
        )
    if weights == "imagenet" and include_top and classes != IMAGENET_CLASSES:
        raise ValueError(
            "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
            f"{IMAGENET_CLASSES}. Received: classes={classes}"
        )
    if include_top:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as err:
            raise ValueError(
                "`classifier_activation` must be None or a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}"
            ) from err
    if dropout_rate is not None and (
        isinstance(dropout_rate, bool)
        or not isinstance(dropout_rate, (int, float))
        or not 0 <= dropout_rate < 1
    ):
        raise ValueError(
            f"`dropout_rate` must be a number in [0, 1). Received: dropout_rate={dropout_rate!r}"
        )


def _requested_shape(input_tensor, input_shape, include_top, default_size):
    """``(shape, the argument it comes from)``: ``input_tensor``'s, ``input_shape``, or the
    default (``None`` for the argument)."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            described = input_tensor
            if hasattr(input_tensor, "shape"):
                described = f"<{type(input_tensor).__name__} of shape {tuple(input_tensor.shape)}>"
            raise ValueError(
                "`input_tensor` must be a Keras tensor such as the output of `keras.Input`. "
                f"Received: input_tensor={described}"
            )
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise ValueError(
                f"`input_shape` disagrees with the shape of `input_tensor` {tensor_shape}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return tensor_shape, "input_tensor"
    if input_shape is not None:
        return input_shape, "input_shape"
    return ((default_size, default_size, 3) if include_top else (None, None, 3)), None


def _checked_shape(shape, arg, input_tensor, weights, include_preprocessing, min_size):
    """``shape`` as a tuple of ints (or ``None``), checked against the other arguments."""
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError) as err:
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels). "
            f"Received: input_shape={shape!r}"
        ) from err
    received = f"Received: {arg}={input_tensor if arg == 'input_tensor' else shape}"
    if len(shape) != 3:
        raise ValueError(f"`{arg}` must have 3 dimensions (height, width, channels). {received}")
    if shape[-1] is None or shape[-1] < 1:
        raise ValueError(
            f"`{arg}` must have a known number of channels (channels last). {received}"
        )
    if weights == "imagenet" and shape[-1] != 3:
        raise ValueError(f"`{arg}` must have 3 channels with `weights='imagenet'`. {received}")
    if include_preprocessing and shape[-1] != 3:
        raise ValueError(
            f"`{arg}` must have 3 (RGB) channels with `include_preprocessing=True`; pass "
            f"`include_preprocessing=False` for other inputs. {received}"
        )
    if any(d is not None and d < min_size for d in shape[:2]):
        raise ValueError(
            f"`{arg}` height and width must be at least {min_size}x{min_size}. {received}"
        )
    return shape


def make_input(input_tensor, shape):
    """Returns ``(inputs, x)``: the model inputs and the image tensor to build on."""
    if input_tensor is None:
        inputs = keras.Input(shape=shape, name="input_layer")
        return inputs, inputs
    return keras.utils.get_source_inputs(input_tensor), input_tensor


def normalization(x, mean, std):
    """``(x - 255 mean) / (255 std)`` per channel in the graph (layer ``preprocessing``);
    ``mean`` and ``std`` are given for images scaled to [0, 1]."""
    return layers.Normalization(
        mean=[255.0 * m for m in mean],
        variance=[(255.0 * s) ** 2 for s in std],
        name="preprocessing",
    )(x)


def imagenet_preprocessing(x):
    """Maps 0-255 RGB to the normalised input of the reference weights, in the graph."""
    return normalization(x, IMAGENET_MEAN, IMAGENET_STD)


def top(
    x,
    *,
    include_top,
    pooling,
    classes,
    classifier_activation,
    dropout_rate,
    hidden=None,
    hidden_norm=False,
):
    """Global pooling, then (with ``include_top``) an optional hidden FC and the classifier.

    ``hidden`` adds the GhostNet head: ``Dense(hidden)`` + ReLU on the pooled
    features, which is the paper's 1x1 conv on a 1x1 map (same weights, and a
    FULLY_CONNECTED op in TFLite).
    """
    if not include_top:
        if pooling == "avg":
            return layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if pooling == "max":
            return layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if hidden:
        x = layers.Dense(hidden, use_bias=not hidden_norm, name="head")(x)
        if hidden_norm:
            from ghostnet_keras.blocks import batch_norm

            x = batch_norm(x, "head_bn")
        x = layers.ReLU(name="head_relu")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Dense(classes, name="classifier")(x)
    return layers.Activation(classifier_activation, name="predictions")(x)


def load_weights(model, weights, model_name, include_top, with_top=None):
    """Loads ``weights`` (None, 'imagenet' or a path) into ``model``.

    ``with_top(classes)`` builds the same model with its top: without the top, a file saved
    with the top of exactly this model loads its backbone (see :func:`_load_backbone`).
    """
    if weights is None:
        return
    if weights == "imagenet":
        from ghostnet_keras import pretrained

        pretrained.load_imagenet_weights(model, model_name, include_top=include_top)
        return
    if not include_top and with_top is not None and _load_backbone(model, weights, with_top):
        return
    weights_file.load(
        model, weights, candidates=_variants_like(model_name), include_top=include_top
    )


def _load_backbone(model, path, with_top):
    """Loads the backbone of ``path`` into ``model`` (built without its top) if the file is
    this very model with its top (any number of classes); returns whether it did.

    ``keras.applications`` needs a separate "notop" file for this; here the file's layers
    are compared with the model's, then with the same model built with its top, and only an
    exact match (up to the classifier's width) loads, layer by layer, by name.
    """
    layout, in_file = weights_file.expected_layout(model), weights_file.read_layout(path)
    if layout is None or not in_file:
        return False
    differ, extra = weights_file.differences(layout, in_file)
    if differ or not extra:  # not this backbone, or nothing more than it
        return False
    full = with_top(IMAGENET_CLASSES)
    differ, extra = weights_file.differences(weights_file.expected_layout(full), in_file)
    if extra or len(differ) > 1 or any(name != "classifier" for name, _, _ in differ):
        return False
    if differ:  # another number of classes: the file's classifier bias says how many
        found = differ[0][2]
        if not found or len(found[-1]) != 1:
            return False
        full = with_top(found[-1][0])
    weights_file.load(full, path)
    by_name = {layer.name: layer for layer in full.layers}
    for layer in model.layers:
        if layer.weights and layer.name in by_name:
            layer.set_weights(by_name[layer.name].get_weights())
    return True


TOP_ARGS = ("include_top", "pooling", "classes", "classifier_activation", "dropout_rate")


def build(architecture, *, name, **args):
    """Builds the model of ``architecture``: the same steps, in the same order, for all.

    ``args`` are the ``APPLICATION_ARGS`` (``include_top``, ``weights``...).
    """
    arch = architecture
    if args["classes"] is None and arch.default_classes is not None:
        args["classes"] = arch.default_classes
    shape = check_args(
        **args,
        model_name=arch.model_name,
        default_size=arch.default_size,
        min_size=arch.min_size,
    )
    inputs, x = make_input(args["input_tensor"], shape)
    if args["include_preprocessing"]:
        x = (arch.preprocessing or imagenet_preprocessing)(x)
    x = arch.body(x)
    if args["include_top"] and arch.classifier is not None:
        x = arch.classifier(x, args["classes"], args["classifier_activation"])
    else:
        top_args = {k: args[k] for k in TOP_ARGS}
        x = top(x, hidden=arch.hidden, hidden_norm=arch.hidden_norm, **top_args)
    model = keras.Model(inputs, x, name=name or arch.model_name)

    def with_top(classes):  # the same model with its top, for a file saved with it
        size = arch.default_size
        top_args = {"include_top": True, "weights": None, "input_tensor": None}
        top_args |= {"input_shape": (size, size, shape[-1]), "classes": classes}
        return build(arch, name=name, **(args | top_args))

    load_weights(model, args["weights"], arch.model_name, args["include_top"], with_top)
    return model


def _as_parameters(names_defaults):
    return [_Parameter(n, _Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in names_defaults]


def family(name=None, **defaults):
    """Decorator: makes ``architecture_fn(own args) -> Architecture`` a model builder.

    The builder's signature is the function's own arguments, the ``APPLICATION_ARGS`` in
    place of its ``*application`` marker (with ``defaults`` replacing theirs), then ``name``
    (default ``name``). Calling it validates the family's arguments (the function), then
    runs :func:`build`.

    Example:
        @family(classes=10, dropout_rate=0.5)
        def ghost_vgg16_cifar(*application, ratio=2, dw_size=3): ...

    has the signature ``(include_top=True, ..., include_preprocessing=True, ratio=2,
    dw_size=3, name=None)``.
    """
    unknown = set(defaults) - {n for n, _ in APPLICATION_ARGS}
    if unknown:
        raise TypeError(f"family() got defaults for unknown arguments {sorted(unknown)}")
    application = [(n, defaults.get(n, d)) for n, d in APPLICATION_ARGS]

    def wrap(architecture_fn):
        before, after, marker = [], [], False
        for p in inspect.signature(architecture_fn).parameters.values():
            if p.kind is _Parameter.VAR_POSITIONAL:
                marker = True
            else:
                (after if marker else before).append(
                    p.replace(kind=_Parameter.POSITIONAL_OR_KEYWORD)
                )
        if not marker:
            raise TypeError(
                f"{architecture_fn.__name__} needs a `*application` marker where the "
                "keras.applications arguments go"
            )
        own = [p.name for p in before + after]
        parameters = before + _as_parameters(application) + after
        signature = inspect.Signature([*parameters, *_as_parameters([("name", name)])])

        def make(arguments, model_name=None):
            own_args = {k: arguments[k] for k in own}
            arch = architecture_fn(**own_args)
            if arch.variant is not None and arguments["weights"] == "imagenet":
                name = model_name or arch.model_name
                arch = _imagenet_variant(architecture_fn, own_args, arch, name)
            if model_name is not None:
                arch = dataclasses.replace(arch, model_name=model_name)
            return build(arch, name=arguments["name"], **{n: arguments[n] for n, _ in application})

        @functools.wraps(architecture_fn)
        def builder(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return make(bound.arguments)

        builder.__signature__ = signature
        builder._make = make
        return builder

    return wrap


def _imagenet_variant(architecture_fn, own_args, arch, model_name):
    """The architecture in the variant the ImageNet weights of ``model_name`` need: chosen
    when ``variant`` is ``None``, checked when it is given."""
    from ghostnet_keras import pretrained  # lazily: it reads weights, builds nothing here

    entry = pretrained.get_entry(model_name)
    if entry is None:  # check_weights raises the "no weights published" error
        return arch
    default = (
        arch if own_args["variant"] is None else architecture_fn(**own_args | {"variant": None})
    )
    needed = entry.variant or default.variant
    if own_args["variant"] is None:
        return arch if arch.variant == needed else architecture_fn(**own_args | {"variant": needed})
    if arch.variant != needed:
        raise ValueError(
            f"The ImageNet weights of {model_name} ({entry.source}) need variant={needed!r}; "
            f"pass variant=None or {needed!r}. Received: variant={own_args['variant']!r}"
        )
    return arch


# Family arguments that the fixed builders of :func:`variant` still take (when not fixed).
OPEN_ARGS = ("variant",)
_VARIANTS = {}  # registry name -> the family builder it fixes


def variant(family_builder, registry_name, function_name, doc, overrides=(), **fixed):
    """Makes, documents and registers a fixed builder of ``family_builder``.

    The builder (named ``function_name``, documented by ``doc``) calls the family with the
    arguments ``fixed`` (which leave its signature; a fixed application argument such as
    ``classes=10`` only changes its default) and builds the model under ``registry_name``,
    which names the model and keys its row in :mod:`ghostnet_keras.catalog` (its module,
    public name ``function_name``, converters and weights), checked when it is registered.

    ``overrides`` names family arguments the builder still takes, after the application
    arguments, with the fixed value (or the family's default) as their default: the paper's
    ablations of one model (``ResNet56(width=0.7)``). The model keeps its registry name;
    ``weights="imagenet"`` with an override away from its default is a ``ValueError``, since
    the published weights are those of the model as fixed.
    """
    family_signature = family_builder.__signature__
    parameters = family_signature.parameters
    application = [n for n, _ in APPLICATION_ARGS]
    unknown = set(fixed) - set(parameters)
    unknown |= set(overrides) - (set(parameters) - {*application, "name"})  # its own only
    if unknown:
        raise TypeError(f"{family_builder.__name__} takes no arguments {sorted(unknown)}")
    # The fixed builder takes the application arguments, the open family arguments, then
    # ``name``; the family's other arguments are those of ``fixed`` or their defaults.
    open_args = [n for n in parameters if n in overrides or (n in OPEN_ARGS and n not in fixed)]
    signature = family_signature.replace(
        parameters=[
            parameters[n].replace(default=fixed.get(n, parameters[n].default))
            for n in (*application, *open_args, "name")
        ]
    )
    architecture = {k: v for k, v in fixed.items() if k not in application and k != "name"}

    def builder(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        _check_overrides(registry_name, signature, overrides, bound.arguments)
        arguments = family_signature.bind(**(architecture | bound.arguments))
        arguments.apply_defaults()
        return family_builder._make(arguments.arguments, registry_name)

    builder.__signature__ = signature
    builder.__name__ = builder.__qualname__ = function_name
    builder.__module__ = family_builder.__module__
    builder.__doc__ = doc
    _VARIANTS[registry_name] = family_builder
    return register_model(registry_name)(builder)


def _check_overrides(registry_name, signature, overrides, arguments):
    """With ``weights="imagenet"``, every override must keep its default: the published
    weights are those of ``registry_name`` as fixed."""
    if arguments["weights"] != "imagenet":
        return
    for arg in overrides:
        default = signature.parameters[arg].default
        if arguments[arg] != default:
            check_weights("imagenet", registry_name)  # no weights published: that error
            raise ValueError(
                f"The ImageNet weights of {registry_name} are for {arg}={default!r}; pass "
                f"weights=None (or a weights file) to change it. Received: {arg}="
                f"{arguments[arg]!r}"
            )


def _variants_like(model_name):
    """Registry names of the variants of ``model_name``'s family (for "did you mean")."""
    family_builder = _VARIANTS.get(model_name)
    if family_builder is None:
        by_prefix = [n for n in _VARIANTS if n.rsplit("_", 1)[0] == model_name.rsplit("_", 1)[0]]
        return sorted(by_prefix)
    return sorted(n for n, f in _VARIANTS.items() if f is family_builder)


ARGS_DOC = """
With `include_preprocessing=True` (the default) the model takes RGB images with
values in [0, 255] and normalises them in the graph with the {normalisation}.
With `include_preprocessing=False`, apply `{preprocess_input}` first.

Args:
    include_top: whether to include the {top}.
    weights: {weights}
    input_tensor: optional Keras tensor (output of `keras.Input()`) to use as
        image input for the model.
    input_shape: optional shape tuple `(height, width, channels)`; height and
        width at least {min_size}. Defaults to `({size}, {size}, 3)` with the top and to
        `(None, None, 3)` without it.
    pooling: optional pooling mode for feature extraction when `include_top`
        is `False`: `None` (the 4D output of the last conv), `"avg"` or `"max"`.
    classes: number of classes to classify images into (default {classes}).
    classifier_activation: a `str` or callable, the activation of the top
        layer; `None` returns the logits.
    dropout_rate: dropout before the classifier (default {dropout_rate}).
    include_preprocessing: whether to put the input normalisation in the graph.
{extra}    name: the model's name (default: {name}).

Returns:
    A Keras `Model` instance.
"""

WEIGHTS_IMAGENET = (
    '`None` (random initialization), `"imagenet"` (the published\n'
    "        ImageNet weights), or the path to a weights file to load."
)
WEIGHTS_NONE = (
    "`None` (random initialization) or the path to a weights file to\n"
    '        load. No ImageNet weights are published: `"imagenet"` raises a ValueError.'
)


def args_doc(
    *,
    size=224,
    classes=IMAGENET_CLASSES,
    dropout_rate=0.2,
    imagenet=False,
    top="classifier",
    normalisation="ImageNet mean and standard deviation",
    preprocess_input="ghostnet_keras.preprocess_input",
    extra="",
    name="the registry name",
    min_size=MIN_INPUT_SIZE,
):
    """The Args section of a builder's docstring, the same for every model."""
    return ARGS_DOC.format(
        size=size,
        min_size=min_size,
        classes=classes,
        dropout_rate=dropout_rate,
        weights=WEIGHTS_IMAGENET if imagenet else WEIGHTS_NONE,
        top=top,
        normalisation=normalisation,
        preprocess_input=preprocess_input,
        extra=extra,
        name=name,
    )
