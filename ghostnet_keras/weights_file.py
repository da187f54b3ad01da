"""Loading a ``weights=`` file into a model, with one clear error when it cannot be.

Keras writes a ``.weights.h5`` file as one HDF5 group per layer, ``layers/<class>[_<n>]/vars/<i>``
(the layer's class in snake case, numbered in the order of ``model.layers``). Before loading,
:func:`load` reads the file's structure and compares it with the model's layers, so that a
file of another model (another width, another family, another number of classes) gives one
``ValueError`` naming the first layers that differ and the registered model the file fits,
instead of hundreds of warnings and a dump of tensor values.
"""

import os
import re
import warnings

import keras

from ghostnet_keras import keras_graph

_FIRST = 3  # how many differing layers the message names


def _snake_case(name):
    """The folder name Keras gives a layer class in a weights file (``ReLU`` -> ``re_lu``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _first_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def _received(path):
    return f"Received: weights={os.fspath(path)!r}"


def expected_layout(model):
    """``{file path: (layer name, [weight shapes])}`` of ``model``'s own layers, as Keras writes
    them; ``None`` for a model whose layers hold other layers (not compared)."""
    layout, used = {}, {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) or keras_graph.holds_layers(layer):
            return None
        base = _snake_case(type(layer).__name__)
        count = used.get(base)
        used[base] = 0 if count is None else count + 1
        key = base if count is None else f"{base}_{count + 1}"
        layout[f"layers/{key}"] = (layer.name, [tuple(w.shape) for w in layer.weights])
    return layout


def file_layout(h5):
    """``{file path: [weight shapes]}`` of the layers of an open ``.weights.h5`` file."""
    group = h5.get("layers")
    if group is None:
        return {}
    layout = {}
    for key in group:
        variables = group[key].get("vars")
        if variables is None:
            layout[f"layers/{key}"] = []
            continue
        layout[f"layers/{key}"] = [
            tuple(variables[i].shape) for i in sorted(variables, key=lambda k: int(k))
        ]
    return layout


def differences(model_layout, in_file):
    """``[(layer name, model shapes, file shapes)]`` for every layer with weights that differ
    (file shapes ``None``: the file has no such layer); and the number of file layers with
    weights that the model has no place for."""
    differ = []
    for path, (name, shapes) in model_layout.items():
        found = in_file.get(path)
        if shapes and found != shapes:
            differ.append((name, shapes, found))
    extra = sum(1 for path, shapes in in_file.items() if shapes and path not in model_layout)
    return differ, extra


def _shapes(shapes):
    if shapes is None:
        return "absent"
    if len(set(shapes)) == 1 and len(shapes) > 1:
        return f"{len(shapes)} x {shapes[0]}"
    return ", ".join(str(s) for s in shapes) or "no weights"


def _fits(candidate, in_file):
    """Whether the file fits the built ``candidate`` (up to the number of classes)."""
    layout = expected_layout(candidate)
    if layout is None:
        return False
    differ, extra = differences(layout, in_file)
    return not extra and all(name.startswith("classifier") for name, _, _ in differ)


def _likely_models(model, in_file, candidates, include_top):
    from ghostnet_keras import registry

    channels = model.input_shape[-1] if isinstance(model.input_shape, tuple) else 3
    found = []
    for name in candidates:
        if name == model.name:
            continue  # the model itself: the file does not fit it
        try:
            candidate = registry.create_model(
                name,
                include_top=include_top,
                input_shape=(32, 32, channels),
                include_preprocessing=False,
            )
        except ValueError:
            continue
        if _fits(candidate, in_file):
            found.append(name)
    return found


def open_file(path):
    """The open HDF5 file at ``path``; a ``ValueError`` naming ``weights`` if it cannot be
    read (truncated, damaged, not HDF5). Checked before a model is built."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            "The `weights` file cannot be read; it is truncated, damaged or not an HDF5 "
            f"weights file ({_first_line(err)}). {_received(path)}"
        ) from None


def read_layout(path):
    """``{file path: [weight shapes]}`` of the ``.weights.h5`` file at ``path`` (see
    :func:`file_layout`); ``None`` for another kind of file."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        return None
    with open_file(path) as h5:
        return file_layout(h5)


def check_readable(path):
    """Raises the ``ValueError`` of :func:`open_file` for an unreadable ``.h5`` file."""
    path = os.fspath(path)
    if path.endswith(".h5"):
        open_file(path).close()


def check_file(model, path, candidates=(), include_top=True):
    """Raises a ``ValueError`` naming ``weights`` unless the file at ``path`` can be read and
    (for a ``.weights.h5`` file) holds weights of the shapes of ``model``'s layers."""
    with open_file(path) as h5:
        in_file = file_layout(h5) if path.endswith(".weights.h5") else None
    layout = expected_layout(model)
    if layout is None or in_file is None:  # nested layers, or a legacy Keras 2 ``.h5``
        return
    differ, extra = differences(layout, in_file)
    if not differ and not extra:
        return
    weighted = sum(1 for _, shapes in layout.values() if shapes)
    first = "; ".join(
        f"{name} (model {_shapes(shapes)}, file {_shapes(found)})"
        for name, shapes, found in differ[:_FIRST]
    )
    what = f"{len(differ)} of its {weighted} layers with weights differ, first: {first}"
    if not differ:
        what = f"the file holds {extra} layers with weights that the model does not have"
    if all(name.startswith("classifier") for name, _, _ in differ) and not extra:
        hint = " The file was saved for another number of classes: pass that `classes`."
    else:
        hint = _hint(_likely_models(model, in_file, candidates, include_top))
    raise ValueError(
        f"The `weights` file does not fit model {model.name!r}: {what}.{hint} {_received(path)}"
    )


def _hint(likely):
    return (
        f" The file fits {' or '.join(likely)} (up to the number of classes); build that "
        "model to load it."
        if likely
        else " It is a file of another model."
    )


def load(model, path, candidates=(), include_top=True):
    """Loads the weights file ``path`` into ``model``; every failure is one ``ValueError``
    that names ``weights`` and the file.

    ``candidates`` are registry names the file may belong to instead (the variants of the
    model's family); a file that does not fit the model is matched against them.
    """
    path = os.fspath(path)
    if path.endswith(".h5"):
        check_file(model, path, candidates, include_top)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(path)
    except Exception as err:  # Keras and h5py raise many types for a bad file
        raise ValueError(
            f"The `weights` file cannot be loaded into model {model.name!r} "
            f"({_first_line(err)}). {_received(path)}"
        ) from None
