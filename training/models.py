"""The model of a training run: which registry builder, with which arguments."""

import hashlib
import inspect
import re

import keras
import numpy as np

import ghostnet_keras
from ghostnet_keras import registry

_WIDTH_MODELS = re.compile(r"(g_)?ghostnet_\d{3}")


def model_builder(config, num_classes):
    """`(builder, kwargs)` for `config`; raises `ValueError` for an unknown model, a `width`
    the model does not take, or a builder argument it does not have."""
    builder = registry.get_builder(config.model)  # ValueError with close matches
    kwargs = {
        "weights": None,
        "classes": num_classes,
        "input_shape": (config.image_size, config.image_size, 3),
    }
    if config.dropout_rate is not None:
        kwargs["dropout_rate"] = config.dropout_rate
    kwargs.update(config.model_kwargs)
    if config.width is not None:
        match = _WIDTH_MODELS.fullmatch(config.model)
        if not match:
            raise ValueError(
                "`width` applies to the ghostnet_* and g_ghostnet_* models only; use "
                f"--model_kwargs for other settings. Received: width={config.width} with "
                f"model={config.model}"
            )
        builder = ghostnet_keras.GGhostNet if match.group(1) else ghostnet_keras.GhostNet
        kwargs["width"] = config.width
    accepted = inspect.signature(builder).parameters
    for key in kwargs:
        if key not in accepted:
            raise ValueError(
                f"Model {config.model} takes no argument {key!r}; it takes: "
                f"{', '.join(accepted)}. Received: model_kwargs={config.model_kwargs}"
            )
    return builder, kwargs


def build_model(config, num_classes):
    """The registry model `config.model` for `num_classes` classes at `config.image_size`.

    `config.width` switches `ghostnet_*` / `g_ghostnet_*` to `GhostNet` / `GGhostNet` at that
    width; `config.model_kwargs` go to the builder; `config.dropout_rate` (unless None)
    replaces the model's dropout before the classifier.
    """
    builder, kwargs = model_builder(config, num_classes)
    model = builder(**kwargs)
    if keras.config.dtype_policy().compute_dtype != "float32":
        # Mixed precision: the loss and metrics want float32 probabilities (Keras's advice).
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(
            model.outputs[0]
        )
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model


def weights_fingerprint(model):
    """SHA-256 of all the model's weights, in order: equal fingerprints mean equal weights."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()
