"""Every contact with Keras's private graph API, in one module.

The graph rewriters (:func:`ghostnet_keras.ghostify`, GhostNetV3's ``reparameterize``,
``tflite.optimize.export_graph``, the QAT worker) and :mod:`ghostnet_keras.features` walk a
Functional model's graph. Keras has no public API for that walk, so they read a few private
attributes; they read them here and nowhere else (``tests/test_package.py`` fails on a
``_``-prefixed Keras attribute read anywhere else). A Keras upgrade that renames one of them
breaks this module alone, with one message naming the attribute, the installed version and
the versions checked.

The contacts, each checked with Keras 3.15.1 (``LAST_CHECKED``) and, where marked, tf_keras
2.21 (the QAT worker's Keras 2, whose objects name these attributes the same):

- ``Functional._nodes_by_depth``: the call nodes of a model's own graph (:func:`call_nodes`,
  :func:`node_ids`); also what tells a graph model from a subclassed one
  (:func:`is_functional`).
- ``Layer._inbound_nodes`` (Keras 3 and tf_keras): the nodes where a layer was called
  (:func:`inbound_nodes`).
- ``KerasTensor._keras_history``: the layer that made a symbolic tensor (:func:`producer`).
- ``Layer._flatten_layers``: the layers tracked inside a layer or subclassed model
  (:func:`sublayers`); ``Layer._layers``: whether a layer holds any (:func:`holds_layers`).

The rebuild itself is public API: ``keras.models.clone_model`` with a ``call_function``
(:func:`rebuild`), which early Keras 3 releases lack; there it is one error naming the
installed version. The module imports no TensorFlow, and no Keras at import
(the QAT worker imports it in a tf_keras process).
"""

import importlib.metadata

__all__ = [
    "LAST_CHECKED",
    "call_nodes",
    "holds_layers",
    "inbound_nodes",
    "is_functional",
    "node_ids",
    "producer",
    "rebuild",
    "sublayers",
]

LAST_CHECKED = {"keras": (3, 15, 1), "tf_keras": (2, 21, 0)}


def _version(library):
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def _private(obj, attribute):
    """``obj.<attribute>``; a missing one is the one error of a Keras that changed."""
    try:
        return getattr(obj, attribute)
    except AttributeError:
        library = type(obj).__module__.partition(".")[0]
        checked = ".".join(map(str, LAST_CHECKED.get(library, LAST_CHECKED["keras"])))
        raise RuntimeError(
            f"{library} {_version(library)} has no `{type(obj).__name__}.{attribute}`, which "
            f"ghostnet_keras reads to walk a model's graph (checked up to {library} "
            f"{checked}); its graph internals changed: `ghostnet_keras/keras_graph.py` is the "
            f"one module to update. Received: {type(obj).__name__}"
        ) from None


def is_functional(model):
    """Whether ``model`` is a Keras 3 model with a graph of its own (a Functional model, not
    a Sequential or subclassed one)."""
    import keras

    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def _nodes_by_depth(model):
    return _private(model, "_nodes_by_depth")


def node_ids(model):
    """The ids of every node of ``model``'s own graph (input nodes included)."""
    return {id(node) for nodes in _nodes_by_depth(model).values() for node in nodes}


def call_nodes(model):
    """The call nodes of ``model``'s own graph (not those of other models), depth by depth."""
    for nodes in _nodes_by_depth(model).values():
        for node in nodes:
            if node.operation is not None and not node.is_input:
                yield node


def inbound_nodes(layer):
    """The nodes where ``layer`` was called, in every graph (Keras 3 and tf_keras layers)."""
    return list(_private(layer, "_inbound_nodes"))


def producer(tensor):
    """The layer whose call made the symbolic ``tensor``."""
    return _private(tensor, "_keras_history").operation


def sublayers(layer):
    """Every layer tracked inside ``layer`` (recursively, ``layer`` itself left out)."""
    return list(_private(layer, "_flatten_layers")(include_self=False))


def holds_layers(layer):
    """Whether ``layer`` tracks layers of its own (a custom layer made of layers)."""
    return bool(_private(layer, "_layers"))


def rebuild(model, call_function=None, clone_function=None):
    """A copy of the Functional ``model`` made by re-running its graph:
    ``keras.models.clone_model`` with ``call_function(layer, *args, **kwargs)`` in place of
    each layer call and ``clone_function(layer)`` making each layer (default: a copy without
    weights)."""
    import inspect

    import keras

    if "call_function" not in inspect.signature(keras.models.clone_model).parameters:
        raise RuntimeError(
            "Rebuilding a model's graph needs the `call_function` argument of "
            "keras.models.clone_model, which this Keras lacks: upgrade Keras. "
            f"Received: keras {keras.version()}"
        )
    kwargs = {} if clone_function is None else {"clone_function": clone_function}
    return keras.models.clone_model(model, call_function=call_function, **kwargs)
