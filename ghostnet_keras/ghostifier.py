"""Plug-and-play C-Ghost: replace the ordinary convolutions of any Functional model.

``ghostify(model)`` returns a copy of a Keras 3 Functional (or Sequential)
model in which every ordinary ``Conv2D`` is replaced by a C-Ghost module (paper
section 3.1): a primary convolution with the original kernel size, strides,
padding and dilation makes ``ceil(filters / ratio)`` intrinsic maps, a cheap
``dw_size x dw_size`` depthwise convolution makes the ghost maps from them,
and the concatenation is cut to the original ``filters``. Every other layer is
cloned with its weights. The copy is built by re-running the model's own graph
(``keras.models.clone_model`` with a ``call_function``), so branches, shared
layers and nested Functional or Sequential submodels keep their wiring.

How one ``Conv2D(filters, k, strides, padding, dilation_rate, activation,
use_bias)`` maps:

- primary ``Conv2D(ceil(filters / ratio), k, strides, padding, dilation_rate,
  use_bias=False)`` keeping the kernel initializer, regularizer and
  constraint, then BatchNorm; cheap ``DepthwiseConv2D(dw_size,
  depth_multiplier=ratio - 1, padding="same", use_bias=False)`` on the primary
  output, then BatchNorm. The layer names are those of
  :func:`ghostnet_keras.blocks.ghost_module` with ``name`` = the conv's name;
  for a stride-1 ``"same"`` conv the module is exactly ``blocks.ghost_module``.
- ``use_bias``: the module has no bias; each of its output channels ends in a
  BatchNorm whose ``beta`` is a per-channel offset, so nothing is lost. The
  bias regularizer and constraint are dropped with it.
- ``activation="relu"``: ReLU inside the module after both BatchNorms (the
  paper's C-Ghost module with ReLU, as in GhostNet's expansion modules).
  Any other non-linear activation is applied to the module's output by an
  ``Activation`` layer ``{name}_activation``. Linear convs get no activation.

Left as they are (in ``report.skipped``): depthwise, separable and other
non-``Conv2D`` convolutions, convs with one input channel or one filter, and
the layers excluded by ``skip``. Listed in ``report.unconvertible`` (kept with
their weights, never dropped): grouped convs, ``channels_first`` convs, convs
called more than once (shared layers), subclasses of ``Conv2D`` (their
``call`` may do anything), Conv1D/Conv3D/transposed convs, and convs whose
new layer names would clash with existing names.
"""

import dataclasses
import math
import warnings

import keras
from keras import layers

from ghostnet_keras import blocks, keras_graph
from ghostnet_keras.features import as_functional

__all__ = ["GhostifyReport", "check_ratio_dw", "ghost_conv", "ghostify"]


@dataclasses.dataclass
class GhostifyReport:
    """What :func:`ghostify` did to every convolution of the model.

    Attributes:
        converted: original conv name -> name of the layer that now gives its output.
        skipped: conv name -> why it was left as it is by design or by request.
        unconvertible: conv name -> why it could not be converted (kept as it is).
        params_before: trainable parameters of the input model.
        params_after: trainable parameters of the returned model.
    """

    converted: dict = dataclasses.field(default_factory=dict)
    skipped: dict = dataclasses.field(default_factory=dict)
    unconvertible: dict = dataclasses.field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0

    def __str__(self):
        lines = [
            f"ghostify: {len(self.converted)} converted, {len(self.skipped)} skipped, "
            f"{len(self.unconvertible)} unconvertible; trainable params "
            f"{self.params_before:,} -> {self.params_after:,}"
        ]
        lines += [f"  skipped {n}: {r}" for n, r in self.skipped.items()]
        lines += [f"  unconvertible {n}: {r}" for n, r in self.unconvertible.items()]
        return "\n".join(lines)


# The largest cheap depthwise kernel: the paper's ablation (Table 4) goes up to d = 7; 15
# leaves room for experiments, where an unbounded ``d`` allocates d * d weights per channel
# (d = 1,000: 2 GB for one 512-channel layer of VGG-16).
MAX_DW_SIZE = 15


def check_ratio_dw(ratio, dw_size):
    """Validates the paper's ``s`` (``ratio``) and ``d`` (``dw_size``)."""
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 2:
        raise ValueError(f"`ratio` must be an integer >= 2. Received: ratio={ratio!r}")
    if isinstance(dw_size, bool) or not isinstance(dw_size, int) or not 1 <= dw_size <= MAX_DW_SIZE:
        raise ValueError(
            f"`dw_size` must be an integer from 1 to {MAX_DW_SIZE}. Received: dw_size={dw_size!r}"
        )


def ghost_conv(
    x,
    filters,
    kernel_size,
    strides=1,
    padding="same",
    dilation_rate=1,
    activation=None,
    ratio=2,
    dw_size=3,
    name=None,
    dtype=None,
    trainable=True,
    **primary_kwargs,
):
    """A C-Ghost module (:func:`ghostnet_keras.blocks.ghost_module`) standing in for
    ``Conv2D(filters, kernel_size, ...)``.

    Adds the layers ``{name}_primary_conv``, ``_primary_bn``, (``_primary_relu``),
    ``_cheap_conv``, ``_cheap_bn``, (``_cheap_relu``), ``_concat``, (``_slice``),
    (``_activation``) to the graph of ``x`` and returns the output, which has
    the shape the convolution would give. ``activation`` follows the rules of
    the module docstring; ``primary_kwargs`` (``kernel_initializer``,
    ``kernel_regularizer``, ``kernel_constraint``...) go to the primary conv.
    """
    check_ratio_dw(ratio, dw_size)
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"`filters` must be a positive integer. Received: filters={filters!r}")
    act = keras.activations.get(activation)
    relu = act is keras.activations.relu
    # blocks.ghost_module(x, filters, ratio, kernel_size, dw_size, strides, relu, name)
    return blocks.ghost_module(
        x,
        filters,
        ratio,
        kernel_size,
        dw_size,
        strides,
        relu,
        name,
        padding=padding,
        activation=None if relu or act is keras.activations.linear else activation,
        primary_kwargs={"dilation_rate": dilation_rate, **primary_kwargs},
        dtype=dtype,
        trainable=trainable,
    )


def _new_names(name, filters, ratio, activation):
    names = [f"{name}_{n}" for n in ("primary_conv", "primary_bn", "cheap_conv", "cheap_bn")]
    names.append(f"{name}_concat")
    act = keras.activations.get(activation)
    if act is keras.activations.relu:
        names += [f"{name}_primary_relu", f"{name}_cheap_relu"]
    elif act is not keras.activations.linear:
        names.append(f"{name}_activation")
    if math.ceil(filters / ratio) * ratio != filters:
        names.append(f"{name}_slice")
    return names


_OTHER_CONVS = (
    layers.Conv1D,
    layers.Conv3D,
    layers.Conv1DTranspose,
    layers.Conv2DTranspose,
    layers.Conv3DTranspose,
)
_KEPT_CONVS = (layers.DepthwiseConv2D, layers.SeparableConv2D, layers.SeparableConv1D)


class _Planner:
    """Decides, for every layer of the (nested) graph, what ghostify does with it."""

    def __init__(self, ratio, dw_size, skip):
        self.ratio = ratio
        self.dw_size = dw_size
        self.skip = skip
        self.report = GhostifyReport()
        self.convert = {}  # id(conv) -> conv
        self.names = set()

    def scan(self, model):
        self.names.update(layer.name for layer in model.layers)
        calls = {}
        for node in keras_graph.call_nodes(model):
            calls.setdefault(id(node.operation), [node.operation, 0])[1] += 1
        for layer, count in calls.values():
            if isinstance(layer, keras.Sequential):
                self.scan(as_functional(layer))
            elif keras_graph.is_functional(layer):
                self.scan(layer)
            elif isinstance(layer, keras.Model):
                convs = [
                    sub.name
                    for sub in keras_graph.sublayers(layer)
                    if isinstance(sub, layers.Conv2D)
                ]
                if convs:
                    self.report.unconvertible[layer.name] = (
                        f"subclassed model {type(layer).__name__} (graph unknown): its "
                        f"{len(convs)} conv(s) {', '.join(convs)} kept"
                    )
            else:
                self._decide(layer, count)

    def _decide(self, layer, count):
        verdict = _layer_verdict(layer)
        if verdict is None and self._skipped_by_user(layer):
            verdict = ("skipped", "excluded by `skip`")
        if verdict is None:
            verdict = _conv2d_verdict(layer, count)
        if verdict is None:
            new = _new_names(
                layer.name, layer.filters, self.ratio, layer.get_config()["activation"]
            )
            clash = sorted(set(new) & self.names)
            if not clash:
                self.names.update(new)
                self.convert[id(layer)] = layer
                return
            verdict = ("unconvertible", f"new layer name {clash[0]!r} exists already; kept")
        field, reason = verdict
        if field is not None:
            getattr(self.report, field)[layer.name] = reason

    def _skipped_by_user(self, layer):
        if self.skip is None:
            return False
        if callable(self.skip):
            return bool(self.skip(layer))
        return layer.name in self.skip


_NOTHING = (None, None)  # a layer without convolutions: not in the report


def _layer_verdict(layer):
    """``(report field, reason)`` for a layer that is not a ``Conv2D``, ``None`` for one."""
    if isinstance(layer, _KEPT_CONVS):
        return "skipped", f"{type(layer).__name__} is already cheap; kept"
    if isinstance(layer, _OTHER_CONVS):
        return "unconvertible", f"{type(layer).__name__}: only Conv2D is converted"
    if isinstance(layer, layers.Conv2D):
        return None
    inner = [sub.name for sub in keras_graph.sublayers(layer) if isinstance(sub, layers.Conv2D)]
    if inner:
        return (
            "unconvertible",
            f"custom layer {type(layer).__name__} holds conv(s) {', '.join(inner)}; kept",
        )
    return _NOTHING


def _conv2d_verdict(layer, count):
    """``(report field, reason)`` for a ``Conv2D`` that stays, ``None`` for one to convert."""
    if type(layer) is not layers.Conv2D:
        return (
            "unconvertible",
            f"subclass {type(layer).__name__} of Conv2D (its call may differ); kept",
        )
    data_format = layer.get_config()["data_format"]
    reasons = []
    if layer.groups != 1:
        reasons.append(f"grouped convolution (groups={layer.groups})")
    if data_format != "channels_last":
        reasons.append(f"data_format={data_format!r} (needs channels_last)")
    if count > 1:
        reasons.append(f"shared layer called {count} times")
    if reasons:
        return "unconvertible", "; ".join(reasons) + "; kept"
    if layer.kernel.shape[2] * layer.groups == 1:
        return "skipped", "one input channel; kept"
    if layer.filters == 1:
        return "skipped", "one output filter; kept"
    return None


def _ghost_call(layer, ratio, dw_size):
    def call(x):
        config = layer.get_config()
        primary_kwargs = {
            key: keras.saving.deserialize_keras_object(config[key])
            for key in ("kernel_initializer", "kernel_regularizer", "kernel_constraint")
            if config.get(key) is not None
        }
        return ghost_conv(
            x,
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
            activation=config["activation"],
            ratio=ratio,
            dw_size=dw_size,
            name=layer.name,
            dtype=layer.dtype_policy,
            trainable=layer.trainable,
            **primary_kwargs,
        )

    return call


def _checked_skip(skip):
    """``skip`` as ``None``, a predicate or a frozenset of layer names."""
    if skip is None or callable(skip):
        return skip
    if isinstance(skip, str):
        skip = (skip,)
    try:
        return frozenset(skip)
    except TypeError as err:
        raise ValueError(
            f"`skip` must be a collection of layer names or a callable. Received: skip={skip!r}"
        ) from err


def _graph_model(model):
    """The Functional model whose graph ghostify re-runs (a Sequential one as Functional)."""
    if isinstance(model, keras.Sequential):
        return as_functional(model)
    if keras_graph.is_functional(model):
        return model
    raise ValueError(
        "`model` must be a Keras Functional or Sequential model. "
        f"Received: model={type(model).__name__}"
    )


def ghostify(model, ratio=2, dw_size=3, skip=None, strict=False, return_report=False):
    """Replaces the ordinary ``Conv2D`` layers of ``model`` by C-Ghost modules.

    Args:
        model: a Keras 3 Functional model, or a Sequential model that starts with
            ``keras.Input``. Nested Functional and Sequential submodels are
            converted too. The input model is not modified.
        ratio: the paper's ``s``: the module computes ``ceil(filters / ratio)``
            intrinsic maps with the primary conv and the rest with the cheap
            operation (integer >= 2).
        dw_size: the paper's ``d``: kernel size of the cheap depthwise conv.
        skip: layer names (a collection) or a predicate ``fn(layer) -> bool``
            of convs to leave as they are.
        strict: raise a ``ValueError`` instead of keeping unconvertible convs.
        return_report: also return a :class:`GhostifyReport`.

    Returns:
        The new model (same name, inputs and outputs; untouched layers carry
        the original weights, new layers are freshly initialized), or
        ``(model, report)`` with ``return_report=True``. Unconvertible convs
        are kept with their weights; without ``return_report`` they are named
        in a warning.
    """
    check_ratio_dw(ratio, dw_size)
    skip = _checked_skip(skip)
    source = _graph_model(model)
    planner = _Planner(ratio, dw_size, skip)
    planner.scan(source)
    report = planner.report
    if strict and report.unconvertible:
        name, reason = next(iter(report.unconvertible.items()))
        raise ValueError(
            f"{len(report.unconvertible)} conv layer(s) cannot be converted, first {name!r}: "
            f"{reason}. Received: strict={strict}"
        )

    clones = []  # (original layer, clone) pairs whose weights are copied

    def clone_function(layer):
        if id(layer) in planner.convert:
            return layer  # never called: call_function builds a ghost module instead
        if isinstance(layer, keras.Sequential) or keras_graph.is_functional(layer):
            return _clone(as_functional(layer) if isinstance(layer, keras.Sequential) else layer)
        clone = layer.__class__.from_config(layer.get_config())
        clones.append((layer, clone))
        return clone

    def call_function(layer, *args, **kwargs):
        original = planner.convert.get(id(layer))
        if original is None:
            return layer(*args, **kwargs)
        inputs = args[0] if args else kwargs.pop("inputs")
        output = _ghost_call(original, ratio, dw_size)(inputs)
        report.converted[original.name] = keras_graph.producer(output).name
        return output

    def _clone(functional):
        return keras_graph.rebuild(
            functional, call_function=call_function, clone_function=clone_function
        )

    new_model = _clone(source)
    for layer, clone in clones:
        clone.set_weights(layer.get_weights())
    report.params_before = _count(model.trainable_weights)
    report.params_after = _count(new_model.trainable_weights)
    if report.unconvertible and not return_report:
        warnings.warn(str(report), stacklevel=2)
    return (new_model, report) if return_report else new_model


def _count(weights):
    return sum(math.prod(w.shape) for w in weights)
