"""What every checkpoint converter shares: the weight plan, the checks, the assignment.

A converter is a :class:`Mapping`: a function naming the checkpoint module of every Keras
layer that has weights, the checkpoint's tensor layout (PyTorch or Paddle) and the modules
of the classification head. :func:`weight_plan` turns it into one entry per Keras weight,
:func:`check_state_dict` compares that plan with a checkpoint and names the first
mismatching tensors, and :func:`convert_state_dict` assigns the tensors. Nothing here
needs PyTorch or PaddlePaddle; reading the files is :mod:`ghostnet_keras.converters.readers`.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

# Tensors a state dict carries that are not weights.
IGNORED_SUFFIXES = (".num_batches_tracked",)
MAX_REPORTED = 5

# Source tensor names of a BatchNorm layer's gamma, beta, moving mean and variance.
TORCH_BN = ("weight", "bias", "running_mean", "running_var")
PADDLE_BN = ("weight", "bias", "_mean", "_variance")


@dataclasses.dataclass(frozen=True)
class Mapping:
    """How the checkpoints of one code base map onto the Keras models.

    Attributes:
        name: the converter's key in ``ghostnet_keras.converters.CONVERTERS``.
        title: the code base, for messages ("the official G-Ghost RegNet code").
        models: the registry names this converter fills.
        prefix: Keras layer name -> checkpoint module path; raises ``KeyError`` for a
            layer without a counterpart.
        head: checkpoint modules of the classification head (skipped without the top).
        layout: ``"torch"`` (Conv2d ``(O, I, kh, kw)``, Linear ``(O, I)``) or
            ``"paddle"`` (same convolutions, Linear ``(I, O)``).
        reader: ``"torch"`` (``.pth``/``.safetensors``) or ``"paddle"`` (``.pdparams``).
        conv_dense: checkpoint modules that are 1x1 convolutions on the pooled features
            where the Keras model has a Dense layer.
        linear_conv: checkpoint modules that are Linear layers where the Keras model has a
            1x1 Conv2D (e.g. PaddleClas's squeeze-and-excitation).
        guess: state dict -> the registry name it looks like, or ``None``.
        variant: the builder variant the weights need (``None``: the default network).
        classifier: the checkpoint tensor whose first axis is the number of classes.
        normalize: state dict -> the state dict with the key names ``prefix`` uses (e.g.
            an official release's names renamed to timm's), or ``None``.
    """

    name: str
    title: str
    models: tuple
    prefix: Callable
    head: tuple
    layout: str = "torch"
    reader: str = "torch"
    conv_dense: tuple = ()
    linear_conv: tuple = ()
    guess: Callable | None = None
    variant: str | None = None
    classifier: str = "fc.weight"
    normalize: Callable | None = None

    def classes(self, state_dict):
        """The number of classes of the checkpoint's classifier (``None`` if it has none)."""
        weight = state_dict.get(self.classifier)
        if weight is None:
            return None
        return int(weight.shape[-1] if self.layout == "paddle" else weight.shape[0])

    def is_head(self, tensor_name):
        return any(tensor_name.startswith(module + ".") for module in self.head)


def _conv_kernel(w):  # Conv2d (O, I, kh, kw) -> Conv2D (kh, kw, I, O)
    return w.transpose(2, 3, 1, 0)


def _depthwise_kernel(w, multiplier):  # (C*m, 1, kh, kw) -> DepthwiseConv2D (kh, kw, C, m)
    out, _, kh, kw = w.shape
    return w.reshape(out // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1)


def _torch_dense(w):  # Linear (O, I) or 1x1 Conv2d (O, I, 1, 1) -> Dense (I, O)
    return w.reshape(w.shape[0], -1).T


def _paddle_linear_conv(w):  # Paddle Linear (I, O) -> 1x1 Conv2D (1, 1, I, O)
    return w.reshape(1, 1, *w.shape)


def _torch_linear_conv(w):  # PyTorch Linear (O, I) -> 1x1 Conv2D (1, 1, I, O)
    return w.T.reshape(1, 1, w.shape[1], w.shape[0])


def _identity(w):
    return w


def _layer_prefix(model, layer, mapping):
    """The checkpoint module of ``layer``; a ``ValueError`` where the mapping has none."""
    try:
        return mapping.prefix(layer.name)
    except KeyError as err:
        raise ValueError(
            f"Model {model.name!r} has a layer {layer.name!r} ({type(layer).__name__}) with "
            f"weights but no counterpart in {mapping.title}; this converter fills "
            f"{', '.join(mapping.models)}."
        ) from err


def _batch_norm_entries(layer, prefix, mapping):
    bn_names = PADDLE_BN if mapping.layout == "paddle" else TORCH_BN
    variables = (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)
    return [
        (variable, f"{prefix}.{name}", tuple(variable.shape), _identity)
        for variable, name in zip(variables, bn_names, strict=True)
    ]


def _conv_entry(layer, prefix, mapping):
    """The kernel entry of a Conv2D: a convolution, or a Linear layer kept as a 1x1 conv."""
    kh, kw, cin, cout = layer.kernel.shape
    if prefix in mapping.linear_conv and mapping.layout == "paddle":
        return (layer.kernel, f"{prefix}.weight", (cin, cout), _paddle_linear_conv)
    if prefix in mapping.linear_conv:
        return (layer.kernel, f"{prefix}.weight", (cout, cin), _torch_linear_conv)
    return (layer.kernel, f"{prefix}.weight", (cout, cin, kh, kw), _conv_kernel)


def _dense_entry(layer, prefix, mapping):
    """The kernel entry of a Dense layer: a Linear layer, or a 1x1 conv in the checkpoint."""
    cin, cout = layer.kernel.shape
    if prefix in mapping.conv_dense:
        return (layer.kernel, f"{prefix}.weight", (cout, cin, 1, 1), _torch_dense)
    if mapping.layout == "paddle":
        return (layer.kernel, f"{prefix}.weight", (cin, cout), _identity)
    return (layer.kernel, f"{prefix}.weight", (cout, cin), _torch_dense)


def _kernel_entry(layer, prefix, mapping):
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = layer.kernel.shape
        return (
            layer.kernel,
            f"{prefix}.weight",
            (channels * multiplier, 1, kh, kw),
            lambda w, m=multiplier: _depthwise_kernel(w, m),
        )
    if isinstance(layer, layers.Conv2D):
        return _conv_entry(layer, prefix, mapping)
    if isinstance(layer, layers.Dense):
        return _dense_entry(layer, prefix, mapping)
    raise ValueError(
        f"Cannot convert the weights of layer {layer.name!r} ({type(layer).__name__})."
    )


def _layer_entries(model, layer, mapping):
    """The plan entries of one layer with weights: BN statistics, or kernel and bias."""
    from keras import layers

    prefix = _layer_prefix(model, layer, mapping)
    if isinstance(layer, layers.BatchNormalization):
        return _batch_norm_entries(layer, prefix, mapping)
    entries = [_kernel_entry(layer, prefix, mapping)]
    if getattr(layer, "bias", None) is not None:
        entries.append((layer.bias, f"{prefix}.bias", tuple(layer.bias.shape), _identity))
    return entries


def _check_plan_covers_model(model, plan):
    """Every weight of ``model`` assigned once, from one tensor each."""
    seen, names = set(), set()
    for variable, name, _, _ in plan:
        if id(variable) in seen or name in names:
            raise ValueError(f"Weight {variable.path} / tensor {name} would be assigned twice.")
        seen.add(id(variable))
        names.add(name)
    n_weights = sum(1 for layer in model.layers for _ in layer.weights)
    if len(plan) != n_weights:  # e.g. a layer with weights beyond kernel/bias/BN statistics
        raise ValueError(f"Mapped {len(plan)} of the {n_weights} weights of {model.name!r}.")


def weight_plan(model, mapping):
    """Lists ``(variable, tensor_name, tensor_shape, to_keras)`` for every Keras weight.

    ``to_keras`` turns the checkpoint tensor (a numpy array of ``tensor_shape``) into the
    value of ``variable``. Raises ``ValueError`` if a layer with weights has no counterpart,
    or if a weight would be assigned twice or not at all.
    """
    plan = []
    for layer in model.layers:
        if layer.weights:
            plan += _layer_entries(model, layer, mapping)
    _check_plan_covers_model(model, plan)
    return plan


def _describe(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_state_dict(state_dict, plan, mapping, model_name, include_top=True, source="checkpoint"):
    """Raises a ``ValueError`` naming the first mismatches between ``state_dict`` and ``plan``."""
    expected = {name: shape for _, name, shape, _ in plan}
    provided = {
        name: tuple(value.shape)
        for name, value in state_dict.items()
        if not name.endswith(IGNORED_SUFFIXES) and (include_top or not mapping.is_head(name))
    }
    wrong_shape = [n for n in expected if n in provided and provided[n] != expected[n]]
    missing = [n for n in expected if n not in provided]
    unexpected = [n for n in provided if n not in expected]
    if not (wrong_shape or missing or unexpected):
        return
    lines = [
        f"{source} does not match {model_name} (include_top={include_top}): "
        f"{len(wrong_shape)} tensors differ in shape, {len(missing)} are missing and "
        f"{len(unexpected)} are unexpected."
    ]
    modules = {}  # the first mismatching tensor of each module, to show more modules
    for name in wrong_shape:
        modules.setdefault(name.rsplit(".", 1)[0], name)
    for name in list(modules.values())[:MAX_REPORTED]:
        lines.append(
            f"  {name}: checkpoint {_describe(provided[name])}, "
            f"{model_name} expects {_describe(expected[name])}"
        )
    for name in missing[:MAX_REPORTED]:
        lines.append(f"  missing {name} {_describe(expected[name])}")
    for name in unexpected[:MAX_REPORTED]:
        lines.append(f"  unexpected {name} {_describe(provided[name])}")
    guess = mapping.guess(state_dict) if mapping.guess else None
    if guess and guess != model_name:
        lines.append(f"The checkpoint looks like {guess}: pass --model={guess}.")
    elif not guess:
        other = _guess_elsewhere(state_dict, mapping)
        hint = ""
        if other is not None:
            hint = f"; it looks like {other[1]} of {other[0].title}: pass --model={other[1]}"
        lines.append(
            f"It does not look like a checkpoint of {mapping.title} "
            f"({', '.join(mapping.models)}){hint}."
        )
    raise ValueError("\n".join(lines))


def _guess_elsewhere(state_dict, mapping):
    """``(mapping, model)`` of another converter that recognises the state dict, or ``None``."""
    from ghostnet_keras import converters

    for name in converters.CONVERTERS:
        other = converters.get(name)
        if other.name != mapping.name and other.guess and (found := other.guess(state_dict)):
            return other, found
    return None


def convert_state_dict(
    state_dict, model, mapping, model_name=None, include_top=True, source="checkpoint"
):
    """Assigns ``state_dict`` (tensor name -> numpy array) to the Keras ``model``.

    Every Keras weight is assigned exactly once, and every tensor of the state dict is
    used except the ``num_batches_tracked`` counters (and the head's tensors when
    ``include_top`` is false). Returns the number of tensors assigned.
    """
    if mapping.normalize is not None:
        state_dict = mapping.normalize(state_dict)
    plan = weight_plan(model, mapping)
    check_state_dict(state_dict, plan, mapping, model_name or model.name, include_top, source)
    for variable, name, _, to_keras in plan:
        value = to_keras(np.asarray(state_dict[name], dtype="float32"))
        if tuple(value.shape) != tuple(variable.shape):  # the plan's shapes are exact
            raise AssertionError(f"{name}: {value.shape} != {variable.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{source}: tensor {name} holds NaN or infinite values.")
        variable.assign(value)
    return len(plan)


def expected_tensors(model, mapping, include_top=True):
    """``{tensor name: shape}`` that a checkpoint for ``model`` must hold."""
    return {
        name: shape
        for _, name, shape, _ in weight_plan(model, mapping)
        if include_top or not mapping.is_head(name)
    }
