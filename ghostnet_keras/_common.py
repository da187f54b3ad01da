"""What every model builder shares: argument checks, the input, the top, weights."""

import os

import keras
from keras import layers

from ghostnet_keras.constants import IMAGENET_MEAN, IMAGENET_STD
MIN_INPUT_SIZE = 32
POOLING_CHOICES = (None, "avg", "max")


def check_args(
    *,
    weights,
    include_top,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    width=None,
    include_preprocessing=False,
    default_size=224,
    min_size=MIN_INPUT_SIZE,
    weight_classes=1000,
):
    """Validates the keras.applications arguments; returns the input shape to build.

    Every error is a ``ValueError`` that names the argument and ends with
    ``Received: <arg>=<value>``.
    """
    if not (weights is None or weights == "imagenet" or isinstance(weights, (str, os.PathLike))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to a weights file. "
            f"Received: weights={weights!r}"
        )
    if weights is not None and weights != "imagenet" and not os.path.exists(weights):
        raise ValueError(
            f"The `weights` file does not exist. Received: weights={os.fspath(weights)!r}"
        )
    if width is not None and not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"`width` must be a number > 0. Received: width={width!r}")
    if pooling not in POOLING_CHOICES:
        raise ValueError(
            f"`pooling` must be one of None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    if weights == "imagenet" and include_top and classes != weight_classes:
        raise ValueError(
            "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
            f"{weight_classes}. Received: classes={classes}"
        )
    if include_top:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as err:
            raise ValueError(
                "`classifier_activation` must be None or a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}"
            ) from err

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
        shape, arg = tensor_shape, "input_tensor"
    elif input_shape is not None:
        shape, arg = input_shape, "input_shape"
    else:
        shape, arg = ((default_size, default_size, 3) if include_top else (None, None, 3)), None

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


def preprocessing(x):
    """Maps 0-255 RGB to the normalised input of the reference weights, in the graph."""
    return layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN],
        variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
        name="preprocessing",
    )(x)


def top(x, *, include_top, pooling, classes, classifier_activation, dropout_rate, hidden=None):
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
        x = layers.Dense(hidden, name="head")(x)
        x = layers.ReLU(name="head_relu")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Dense(classes, name="classifier")(x)
    return layers.Activation(classifier_activation, name="predictions")(x)


def load_weights(model, weights, model_name, include_top):
    """Loads ``weights`` (None, 'imagenet' or a path) into ``model``."""
    if weights is None:
        return
    if weights == "imagenet":
        from ghostnet_keras import pretrained

        pretrained.load_imagenet_weights(model, model_name, include_top=include_top)
        return
    model.load_weights(os.fspath(weights))
