"""Multi-scale features (strides 4/8/16/32) of any Functional backbone, for detection."""

import keras

from ghostnet_keras import keras_graph
from ghostnet_keras.profiler import static_copy

_PROBE_SIZE = 512


def _stage_outputs(model):
    """Names of the layers whose output is the whole state of the graph at that point.

    Walking the layers in topological order, a layer is a stage output when,
    right after it, no other tensor computed so far is still waiting to be
    used: the end of a residual block, not a tensor inside one.
    """
    consumers = {layer.name: 0 for layer in model.layers}
    parents = {}
    for layer in model.layers:
        names = []
        for node in keras_graph.inbound_nodes(layer):
            names += [p.operation.name for p in node.parent_nodes]
        parents[layer.name] = names
        for name in names:
            consumers[name] += 1
    pending = dict(consumers)
    open_tensors = set()
    cuts = []
    for layer in model.layers:
        for name in parents[layer.name]:
            pending[name] -= 1
            if pending[name] == 0:
                open_tensors.discard(name)
        if consumers[layer.name]:
            open_tensors.add(layer.name)
        if open_tensors == {layer.name} or (not consumers[layer.name] and not open_tensors):
            cuts.append(layer)
    return cuts


def as_functional(model):
    """``model`` as a Functional model over the same layers: a Functional model as it is, a
    Sequential one that starts with ``keras.Input`` wrapped; anything else a ``ValueError``."""
    if isinstance(model, keras.Sequential):
        if not model.built or not getattr(model, "inputs", None):
            raise ValueError(
                "A Sequential model must be built with a known input shape (start it with "
                f"`keras.Input`). Received: model={model.name!r}"
            )
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if keras_graph.is_functional(model):
        return model
    raise ValueError(
        "`model` must be a Keras Functional model, or a Sequential model that starts with "
        "`keras.Input`; a subclassed model has no graph to take features from. "
        f"Received: model={type(model).__name__}"
    )


def feature_layer_names(model, strides=(4, 8, 16, 32)):
    """For each stride, the name of the last stage output at that stride."""
    model = as_functional(model)
    probe = static_copy(model, (_PROBE_SIZE, _PROBE_SIZE, model.input_shape[-1]))
    found = {}
    for layer in _stage_outputs(probe):
        shape = layer.output.shape
        if len(shape) == 4 and shape[1] and _PROBE_SIZE % shape[1] == 0:
            found[_PROBE_SIZE // shape[1]] = layer.name
    missing = [s for s in strides if s not in found]
    if missing:
        raise ValueError(
            f"`model` has no stage output at stride(s) {missing}; it has {sorted(found)}. "
            f"Received: strides={tuple(strides)}"
        )
    return [found[s] for s in strides]


def feature_extractor(model, strides=(4, 8, 16, 32), name=None):
    """Returns a model sharing ``model``'s layers whose outputs are its features at ``strides``.

    Works for every model of this package (C-GhostNet, G-GhostNet, ResNets),
    with or without the top, and for any Functional model or Sequential model that
    starts with ``keras.Input`` (subclassed models raise a ``ValueError``), e.g. as
    the backbone of a RetinaNet-style detector:

        backbone = ghostnet_keras.GhostNet100(include_top=False, input_shape=(None, None, 3))
        c2, c3, c4, c5 = ghostnet_keras.feature_extractor(backbone)(images)
    """
    model = as_functional(model)
    names = feature_layer_names(model, strides)
    outputs = [model.get_layer(n).output for n in names]
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")
