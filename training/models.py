"""The model of a training run: which registry builder, with which arguments, and the
weights it starts from (`--weights`: fine-tuning, see `build_model`)."""

import contextlib
import hashlib
import inspect
import os
import re
import shutil
import tempfile
import zipfile

import keras
import numpy as np

import ghostnet_keras
from ghostnet_keras import labels as labels_lib
from ghostnet_keras import pretrained, registry, skeleton, weights_file

IMAGENET = "imagenet"
WEIGHT_FILES = (".weights.h5", ".keras")
_KERAS_WEIGHTS = "model.weights.h5"  # the weights member of a .keras file

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


def check_weights(config):
    """Raises the one-line `ValueError` of a `--weights` that cannot be used, before any data is
    read: 'imagenet' for a model without published weights, a file that does not exist or is
    neither a `.weights.h5` nor a `.keras` file."""
    weights = config.weights
    if not weights:
        return
    if weights != IMAGENET and not os.fspath(weights).endswith(WEIGHT_FILES):
        raise ValueError(
            "`weights` must be 'imagenet', a .weights.h5 file (e.g. from convert_weights) or a "
            f".keras file of an earlier run. Received: weights={weights!r}"
        )
    skeleton.check_weights(weights, config.model)


@contextlib.contextmanager
def _weights_path(weights):
    """The `.weights.h5` path of `weights`: itself, or the weights member of a `.keras` file
    extracted to a temporary file (a `.keras` archive holds a `.weights.h5`)."""
    if weights == IMAGENET or not weights.endswith(".keras"):
        yield weights
        return
    folder = tempfile.mkdtemp(prefix="ghostnet-weights-")
    path = os.path.join(folder, os.path.basename(weights)[: -len(".keras")] + ".weights.h5")
    try:
        try:
            with zipfile.ZipFile(weights) as archive, open(path, "wb") as out:
                with archive.open(_KERAS_WEIGHTS) as member:
                    shutil.copyfileobj(member, out)
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"The `weights` file is not a readable .keras model file ({error}). "
                f"Received: weights={weights!r}"
            ) from None
        try:
            yield path
        except ValueError as error:  # name the user's file, not the temporary one
            raise ValueError(str(error).replace(path, weights)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _classes_in_file(model, path):
    """The number of classes of the classifier in the `.weights.h5` file at `path` (laid out
    like `model`), or None if it has no classifier where `model` has one."""
    layout, in_file = weights_file.expected_layout(model), weights_file.read_layout(path)
    for key, (name, _) in (layout or {}).items():
        shapes = in_file.get(key) if name == "classifier" else None
        if shapes and len(shapes[-1]) == 1:
            return shapes[-1][0]
    return None


def _with_variant(config, builder, kwargs):
    """`kwargs` with the `variant` the ImageNet weights need (the PaddleClas variants): the
    model built without weights must have the layers of the one built with them."""
    entry = pretrained.get_entry(config.model) if config.weights == IMAGENET else None
    if entry is not None and entry.variant is not None and "variant" not in kwargs:
        if "variant" in inspect.signature(builder).parameters:
            return kwargs | {"variant": entry.variant}
    return kwargs


def _pretrained_model(config, builder, kwargs, class_names):
    """The model of `builder(**kwargs)` starting from `config.weights`.

    The whole file is loaded when its classifier has the data set's number of classes (and, if
    it is a `.keras` file with labels, the same class names). Otherwise the backbone is built
    with the weights (`include_top=False`: the registry's own path for 'imagenet', and for a
    file saved with its top `skeleton` loads the backbone part) and copied into the model with
    its own head, new, for `num_classes`.
    """
    weights = config.weights
    source_labels = labels_lib.load_labels(weights) if weights.endswith(".keras") else None
    model = builder(**_with_variant(config, builder, kwargs))
    with _weights_path(weights) as path:
        classes = 1000 if weights == IMAGENET else _classes_in_file(model, path)
        same = classes == kwargs["classes"] and (
            source_labels is None or class_names is None or list(source_labels) == class_names
        )
        if same:
            return builder(**kwargs | {"weights": path})
        backbone = builder(**kwargs | {"weights": path, "include_top": False, "pooling": None})
    pretrained.copy_weights(backbone, model)
    return model


def backbone_layers(config, num_classes):
    """The names of the layers of `config.model` without its top (`include_top=False`): what
    fine-tuning's first phase freezes."""
    builder, kwargs = model_builder(config, num_classes)
    kwargs = _with_variant(config, builder, kwargs)
    backbone = builder(**kwargs | {"include_top": False, "pooling": None})
    return {layer.name for layer in backbone.layers}


def set_phase(model, backbone, phase):
    """Fine-tuning's trainable state. Phase 1: the layers of `backbone` (names) frozen, so that
    only the new head trains; phase 2: everything trains but the backbone's BatchNorm layers,
    which stay frozen: in Keras 3 a BatchNormalization layer that is not trainable runs in
    inference mode (its moving statistics, neither updated nor replaced by the batch's).
    Phase 0: everything trains (no `--weights`)."""
    for layer in model.layers:
        if phase == 0 or layer.name not in backbone:
            layer.trainable = True
        elif phase == 1:
            layer.trainable = False
        else:
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)


def build_model(config, num_classes, class_names=None):
    """The registry model `config.model` for `num_classes` classes at `config.image_size`.

    `config.width` switches `ghostnet_*` / `g_ghostnet_*` to `GhostNet` / `GGhostNet` at that
    width; `config.model_kwargs` go to the builder; `config.dropout_rate` (unless None)
    replaces the model's dropout before the classifier. `config.weights` ('imagenet', a
    `.weights.h5` or a `.keras` file) are loaded through the registry builder's `weights`
    (`ghostnet_keras.weights_file`: a file of another model is one `ValueError`), the head
    replaced when the data set has other classes (`class_names`: the data set's, in order).
    """
    builder, kwargs = model_builder(config, num_classes)
    if config.weights:
        model = _pretrained_model(config, builder, kwargs, class_names)
    else:
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
