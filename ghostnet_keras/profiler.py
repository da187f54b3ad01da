"""Model complexity in the paper's columns: parameters, multiply-adds, activations."""

import math

import keras
from keras import layers

_COUNTED = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)


def static_copy(model, input_shape):
    """Rebuilds ``model`` (Functional, weights not copied) with a fixed input shape."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *input_shape]
    return model.__class__.from_config(config)


def _input_shape(model, input_shape):
    if input_shape is not None:
        if isinstance(input_shape, int):
            input_shape = (input_shape, input_shape, model.input_shape[-1])
        shape = tuple(input_shape)
        if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(
                "`input_shape` must be (height, width, channels) of positive integers. "
                f"Received: input_shape={input_shape!r}"
            )
        return shape
    shape = tuple(model.input_shape[1:])
    if None in shape[:2]:
        shape = (224, 224, shape[2])
    return shape


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def profile(model, input_shape=None):
    """Counts the paper's complexity measures of a Functional ``model``.

    Args:
        model: a Keras Functional model (one image input, channels last).
        input_shape: ``(height, width, channels)`` or an int for a square image;
            defaults to the model's input shape, or 224x224 where it is unknown.

    Returns:
        A dict with ``params`` (trainable parameters: the paper's and PyTorch's
        count, BatchNorm moving statistics excluded), ``non_trainable_params``,
        ``macs`` (multiply-accumulates of Conv2D, DepthwiseConv2D and Dense
        layers; the "FLOPs" of the paper), ``activations`` (elements of all
        Conv2D/DepthwiseConv2D/Dense outputs, the measure of the RegNet paper)
        and ``input_shape``.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "get_config"):
        raise ValueError(f"`model` must be a Keras Functional model. Received: model={model!r}")
    shape = _input_shape(model, input_shape)
    static = model if tuple(model.input_shape[1:]) == shape else static_copy(model, shape)
    macs = activations = 0
    for layer in _walk(static):
        if isinstance(layer, _COUNTED):
            out = layer.output.shape
            positions = math.prod(out[1:-1])
            macs += positions * math.prod(layer.kernel.shape)
            activations += math.prod(out[1:])
    return {
        "params": sum(math.prod(w.shape) for w in model.trainable_weights),
        "non_trainable_params": sum(math.prod(w.shape) for w in model.non_trainable_weights),
        "macs": macs,
        "activations": activations,
        "input_shape": shape,
    }
