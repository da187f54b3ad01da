"""Converting a checkpoint file into Keras weights: choose the converter, read, build, assign,
write. The library half of ``python -m ghostnet_keras.convert_weights``, used by it and by
``weights="imagenet"`` (:mod:`ghostnet_keras.pretrained`)."""

import io
import math
import os

from ghostnet_keras import converters
from ghostnet_keras.converters.core import convert_state_dict, weight_plan
from ghostnet_keras.converters.readers import read_state_dict


def build_model(model_name, include_top=True, classes=1000, variant=None):
    """The Keras model a checkpoint of ``model_name`` converts into (no weights)."""
    if model_name not in converters.convertible_models():
        raise ValueError(
            f"Cannot convert weights for {model_name!r}; supported models: "
            f"{', '.join(converters.convertible_models())}. Received: model={model_name!r}"
        )
    from ghostnet_keras.registry import create_model

    kwargs = {"variant": variant} if variant else {}
    return create_model(
        model_name, include_top=include_top, weights=None, classes=classes, **kwargs
    )


def _choose(model_name, checkpoint, converter):
    if converter is not None:
        mapping = converters.get(converter)
        if model_name not in mapping.models:
            raise ValueError(
                f"The converter {converter!r} fills {', '.join(mapping.models)}, not "
                f"{model_name!r}. Received: converter={converter!r}"
            )
        return [mapping]
    found = converters.for_model(model_name, checkpoint)
    if not found:
        kinds = sorted({m.reader for m in converters.for_model(model_name)})
        raise ValueError(
            f"No converter reads {os.path.basename(os.fspath(checkpoint))} for {model_name}; "
            f"its checkpoints are {' or '.join(kinds)} files."
        )
    return found


def _best(mappings, state_dict, model):
    """The mapping whose tensor names the state dict holds most of."""
    if len(mappings) == 1:
        return mappings[0]

    def score(mapping):
        names = {name for _, name, _, _ in weight_plan(model, mapping)}
        return len(names & state_dict.keys())

    return max(mappings, key=score)


class _WeightsBuffer(io.BytesIO):
    """An in-memory ``.weights.h5`` file: Keras's ``save_weights`` checks the suffix on
    ``str(filepath)`` and writes into an ``io.BytesIO`` through h5py (Keras 3.10 on)."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def __str__(self):
        return self.name


def weights_bytes(model):
    """The content of ``model``'s ``.weights.h5`` file, written in memory."""
    buffer = _WeightsBuffer("model.weights.h5")
    model.save_weights(buffer)
    return buffer.getvalue()


def write_weights(model, output):
    """Writes ``model``'s weights to ``output`` (``.weights.h5``) with the one writer of
    every file of the project (:func:`ghostnet_keras.files.write_bytes`: atomic, never a
    half-written file under the final name). The HDF5 file is made in memory, so that a full
    disk is one ``OSError`` naming the file: h5py writing to the disk left its failed file
    open, retried the flush at exit, printed tracebacks and crashed (SIGSEGV)."""
    from ghostnet_keras import files

    content = weights_bytes(model)
    try:
        files.write_bytes(output, content)
    except OSError as err:
        failure = OSError(f"Cannot write {output}: {err.strerror or err}")
        failure.errno = err.errno
        raise failure from None


def convert_checkpoint(checkpoint, model_name, output, include_top=True, log=None, converter=None):
    """Converts ``checkpoint`` (a file path) to Keras weights for ``model_name``.

    Writes ``output`` (a ``.weights.h5`` file, loadable with the builder's
    ``weights=output`` and the same ``include_top``) atomically and returns the converted
    Keras model. The number of classes is read from the checkpoint's classifier;
    ``converter`` names a converter of ``ghostnet_keras.converters`` (default: chosen from
    the model and the file type). ``log`` is called with progress messages.
    """
    log = log or (lambda message: None)
    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise ValueError(f"The output file name must end in `.weights.h5`. Received: {output}")
    if model_name not in converters.convertible_models():
        build_model(model_name)  # raises the error naming the supported models
    mappings = _choose(model_name, checkpoint, converter)
    log(f"Reading {checkpoint}")
    state_dict = read_state_dict(checkpoint, mappings[0].reader)
    variants = {m.variant for m in mappings}
    if len(variants) > 1:  # never today: the converters of one file type share the variant
        raise ValueError(f"Pass --converter: {', '.join(m.name for m in mappings)} apply.")
    variant = variants.pop()
    classes = 1000
    if include_top:
        classes = next((c for m in mappings if (c := m.classes(state_dict))), 1000)
    log(f"Building {model_name} (include_top={include_top}, classes={classes})")
    model = build_model(model_name, include_top=include_top, classes=classes, variant=variant)
    mapping = _best(mappings, state_dict, model)
    source = os.path.basename(os.fspath(checkpoint))
    count = convert_state_dict(state_dict, model, mapping, model_name, include_top, source)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    write_weights(model, output)
    params = sum(math.prod(w.shape) for w in model.weights)
    log(f"Converted {count} tensors ({params:,} values, {mapping.title}) to {output}")
    return model
