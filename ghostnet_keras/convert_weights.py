"""Converts official or timm GhostNet PyTorch checkpoints to Keras weights.

The official PyTorch release of C-GhostNet 1.0x (``ghostnet_1x.pth``) and timm's
``ghostnet_050/100/130`` share one state-dict layout; this module maps it one to
one onto the layers of :func:`ghostnet_keras.GhostNet`:

    python -m ghostnet_keras.convert_weights --checkpoint=ghostnet_1x.pth \\
        --model=ghostnet_100 --output=ghostnet_100.weights.h5

Reading a ``.pth`` file needs PyTorch, and a ``.safetensors`` file the
``safetensors`` package (``pip install "ghostnet-keras[convert]"``); the
converted ``.weights.h5`` file loads with Keras alone.

The mapping is explicit: :func:`torch_prefix` names the PyTorch module of every
Keras layer that has weights, and :func:`convert_state_dict` checks that every
Keras weight is assigned exactly once and that every checkpoint tensor is used
(``num_batches_tracked`` counters aside, and the head's tensors when converting
without the top). Anything else is an error that lists the first mismatches.
"""

import argparse
import math
import os
import re
import sys

import numpy as np

SUPPORTED_MODELS = {"ghostnet_050": 0.5, "ghostnet_100": 1.0, "ghostnet_130": 1.3}
INSTALL_HINT = 'pip install "ghostnet-keras[convert]"'
# Tensors a PyTorch state dict carries that are not weights.
IGNORED_SUFFIXES = (".num_batches_tracked",)
# PyTorch modules of the classification head (skipped with ``include_top=False``).
HEAD_MODULES = ("conv_head", "classifier")
MAX_REPORTED = 5

# Keras layer-name suffix inside a ghost bottleneck -> PyTorch module path inside it.
_BOTTLENECK_PARTS = {
    "ghost1_primary_conv": "ghost1.primary_conv.0",
    "ghost1_primary_bn": "ghost1.primary_conv.1",
    "ghost1_cheap_conv": "ghost1.cheap_operation.0",
    "ghost1_cheap_bn": "ghost1.cheap_operation.1",
    "dw_conv": "conv_dw",
    "dw_bn": "bn_dw",
    "se_reduce": "se.conv_reduce",
    "se_expand": "se.conv_expand",
    "ghost2_primary_conv": "ghost2.primary_conv.0",
    "ghost2_primary_bn": "ghost2.primary_conv.1",
    "ghost2_cheap_conv": "ghost2.cheap_operation.0",
    "ghost2_cheap_bn": "ghost2.cheap_operation.1",
    "shortcut_dw_conv": "shortcut.0",
    "shortcut_dw_bn": "shortcut.1",
    "shortcut_pw_conv": "shortcut.2",
    "shortcut_pw_bn": "shortcut.3",
}
# Layers outside the bottlenecks.
_FIXED_LAYERS = {
    "stem_conv": "conv_stem",
    "stem_bn": "bn1",
    "head": "conv_head",  # a 1x1 conv on the pooled map in PyTorch, a Dense layer here
    "classifier": "classifier",
}
_BOTTLENECK_RE = re.compile(r"^blocks_(\d+)_(\d+)_(\w+)$")
_LAST_CONV_RE = re.compile(r"^blocks_(\d+)_(conv|bn)$")  # the 1x1 ConvBnAct after the stages


def torch_prefix(layer_name):
    """The PyTorch module path holding the weights of the Keras layer ``layer_name``.

    ``blocks_6_3_se_reduce`` -> ``blocks.6.3.se.conv_reduce``, ``blocks_9_bn`` ->
    ``blocks.9.0.bn1``, ``head`` -> ``conv_head``. Raises ``KeyError`` for a layer
    that has no counterpart in the reference code.
    """
    if layer_name in _FIXED_LAYERS:
        return _FIXED_LAYERS[layer_name]
    match = _BOTTLENECK_RE.match(layer_name)
    if match and match.group(3) in _BOTTLENECK_PARTS:
        stage, index, part = match.groups()
        return f"blocks.{stage}.{index}.{_BOTTLENECK_PARTS[part]}"
    match = _LAST_CONV_RE.match(layer_name)
    if match:
        stage, kind = match.groups()
        return f"blocks.{stage}.0.{'conv' if kind == 'conv' else 'bn1'}"
    raise KeyError(f"No PyTorch counterpart for the Keras layer {layer_name!r}")


def _conv_kernel(w):  # Conv2d (O, I, kh, kw) -> Conv2D (kh, kw, I, O)
    return w.transpose(2, 3, 1, 0)


def _depthwise_kernel(w, multiplier):  # (C*m, 1, kh, kw) -> DepthwiseConv2D (kh, kw, C, m)
    out, _, kh, kw = w.shape
    return w.reshape(out // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1)


def _dense_kernel(w):  # Linear (O, I) or 1x1 Conv2d (O, I, 1, 1) -> Dense (I, O)
    return w.reshape(w.shape[0], -1).T


def weight_plan(model, prefix_fn=None):
    """Lists ``(variable, torch_name, torch_shape, to_keras)`` for every Keras weight.

    ``prefix_fn(layer_name)`` names the PyTorch module of a layer (default
    :func:`torch_prefix`; GhostNetV2/V3 pass :func:`ghostnet_keras.convert_v2v3.torch_prefix`).

    ``to_keras`` turns the PyTorch tensor (a numpy array of ``torch_shape``) into
    the value of ``variable``. Raises ``ValueError`` if a layer with weights has
    no PyTorch counterpart, or if a weight would be assigned twice.
    """
    from keras import layers

    plan = []
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            prefix = (prefix_fn or torch_prefix)(layer.name)
        except KeyError as err:
            raise ValueError(
                f"Model {model.name!r} has a layer {layer.name!r} ({type(layer).__name__}) with "
                "weights but no counterpart in the reference GhostNet; only C-GhostNet "
                f"({', '.join(SUPPORTED_MODELS)}) can be converted."
            ) from err
        if isinstance(layer, layers.BatchNormalization):
            for variable, name in (
                (layer.gamma, "weight"),
                (layer.beta, "bias"),
                (layer.moving_mean, "running_mean"),
                (layer.moving_variance, "running_var"),
            ):
                plan.append((variable, f"{prefix}.{name}", tuple(variable.shape), np.asarray))
        elif isinstance(layer, layers.DepthwiseConv2D):
            kh, kw, channels, multiplier = layer.kernel.shape
            plan.append(
                (
                    layer.kernel,
                    f"{prefix}.weight",
                    (channels * multiplier, 1, kh, kw),
                    lambda w, m=multiplier: _depthwise_kernel(w, m),
                )
            )
        elif isinstance(layer, layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            plan.append((layer.kernel, f"{prefix}.weight", (cout, cin, kh, kw), _conv_kernel))
        elif isinstance(layer, layers.Dense):
            cin, cout = layer.kernel.shape
            shape = (cout, cin, 1, 1) if prefix == "conv_head" else (cout, cin)
            plan.append((layer.kernel, f"{prefix}.weight", shape, _dense_kernel))
        else:
            raise ValueError(
                f"Cannot convert the weights of layer {layer.name!r} ({type(layer).__name__})."
            )
        if getattr(layer, "bias", None) is not None:
            plan.append((layer.bias, f"{prefix}.bias", tuple(layer.bias.shape), np.asarray))
    seen, names = set(), set()
    for variable, name, _, _ in plan:
        if id(variable) in seen or name in names:
            raise ValueError(f"Weight {variable.path} / tensor {name} would be assigned twice.")
        seen.add(id(variable))
        names.add(name)
    n_weights = sum(1 for layer in model.layers for _ in layer.weights)
    if len(plan) != n_weights:  # e.g. a layer with weights beyond kernel/bias/BN statistics
        raise ValueError(f"Mapped {len(plan)} of the {n_weights} weights of {model.name!r}.")
    return plan


def guess_model(state_dict):
    """Names the C-GhostNet width a state dict looks like, or ``None``."""
    stem, last = state_dict.get("conv_stem.weight"), state_dict.get("blocks.9.0.conv.weight")
    if stem is None or last is None:
        return None
    from ghostnet_keras.blocks import make_divisible

    for name, width in SUPPORTED_MODELS.items():
        if stem.shape[0] == make_divisible(16 * width) and last.shape[0] == make_divisible(
            960 * width
        ):
            return name
    return None


def _describe(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_state_dict(state_dict, plan, model_name, include_top=True, source="checkpoint"):
    """Raises a ``ValueError`` listing the first mismatches between ``state_dict`` and ``plan``."""
    expected = {name: shape for _, name, shape, _ in plan}
    provided = {
        name: tuple(value.shape)
        for name, value in state_dict.items()
        if not name.endswith(IGNORED_SUFFIXES)
        and (include_top or name.split(".")[0] not in HEAD_MODULES)
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
    guess = guess_model(state_dict)
    if guess and guess != model_name:
        lines.append(f"The checkpoint looks like {guess}: pass --model={guess}.")
    elif not guess:
        lines.append(
            "It does not look like a C-GhostNet checkpoint "
            f"({', '.join(SUPPORTED_MODELS)}) from the official code or timm."
        )
    raise ValueError("\n".join(lines))


def convert_state_dict(
    state_dict, model, model_name=None, include_top=True, source="checkpoint", prefix_fn=None
):
    """Assigns a GhostNet PyTorch ``state_dict`` (name -> numpy array) to a Keras ``model``.

    Every Keras weight is assigned exactly once, and every tensor of the state
    dict is used except the ``num_batches_tracked`` counters (and ``conv_head`` /
    ``classifier`` when ``include_top`` is false). Returns the number of tensors
    assigned.
    """
    plan = weight_plan(model, prefix_fn)
    check_state_dict(state_dict, plan, model_name or model.name, include_top, source)
    for variable, name, _, to_keras in plan:
        value = to_keras(np.asarray(state_dict[name], dtype="float32"))
        if tuple(value.shape) != tuple(variable.shape):  # the plan's shapes are exact
            raise AssertionError(f"{name}: {value.shape} != {variable.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{source}: tensor {name} holds NaN or infinite values.")
        variable.assign(value)
    return len(plan)


def _unwrap(obj):
    """Finds the state dict inside a checkpoint (plain, or under 'state_dict'/'model')."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "state_dict_ema", "model_ema"):
            if isinstance(obj.get(key), dict) and "conv_stem.weight" not in obj:
                return _unwrap(obj[key])
    return obj


def read_state_dict(path):
    """Reads a PyTorch checkpoint (``.pth``/``.pt``/``.bin``/``.tar``) or ``.safetensors``
    file into a dict of float32 numpy arrays.

    Raises ``ImportError`` naming the extra to install when PyTorch (or safetensors)
    is missing, ``FileNotFoundError`` for a missing file and ``ValueError`` for a
    truncated, corrupt or unrecognised file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as err:
            raise ImportError(
                f"Reading {os.path.basename(path)} needs the `safetensors` package: {INSTALL_HINT}"
            ) from err
        try:
            tensors = load_file(path)
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(
                f"Cannot read {path}: the file is truncated or corrupt ({_first_line(err)})"
            ) from err
    else:
        try:
            import torch
        except ImportError as err:
            raise ImportError(
                f"Converting the PyTorch checkpoint {os.path.basename(path)} needs PyTorch, "
                f"which is not installed: {INSTALL_HINT}"
            ) from err
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # zip, pickle and unpickler errors alike
            raise ValueError(
                f"Cannot read {path}: the file is truncated or corrupt, or not a PyTorch "
                f"checkpoint ({_first_line(err)})"
            ) from err
        obj = _unwrap(obj)
        if not isinstance(obj, dict):
            raise ValueError(
                f"{path} holds a {type(obj).__name__}, not a state dict of named tensors."
            )
        tensors = {
            name: value.detach().cpu().float().numpy()
            for name, value in obj.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()
        }
        tensors.update(
            {
                name: value.numpy()
                for name, value in obj.items()
                if isinstance(value, torch.Tensor) and not value.is_floating_point()
            }
        )
    tensors = {
        (name[len("module.") :] if name.startswith("module.") else name): value
        for name, value in tensors.items()
    }
    if not tensors:
        raise ValueError(f"{path} holds no tensors.")
    return tensors


def _first_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def build_model(model_name, include_top=True, classes=1000):
    """The Keras model a checkpoint of ``model_name`` converts into (no weights)."""
    if model_name not in SUPPORTED_MODELS:
        raise ValueError(
            f"Cannot convert weights for {model_name!r}; supported models: "
            f"{', '.join(SUPPORTED_MODELS)}. Received: model={model_name!r}"
        )
    from ghostnet_keras.ghostnet import GhostNet

    return GhostNet(
        SUPPORTED_MODELS[model_name],
        include_top=include_top,
        weights=None,
        classes=classes,
        name=model_name,
    )


def convert_checkpoint(checkpoint, model_name, output, include_top=True, log=None):
    """Converts ``checkpoint`` (a file path) to Keras weights for ``model_name``.

    Writes ``output`` (a ``.weights.h5`` file, loadable with
    ``GhostNet...(include_top=include_top, weights=output)``) and returns the
    converted Keras model. The number of classes is read from the checkpoint's
    classifier. ``log`` is called with progress messages.
    """
    log = log or (lambda message: None)
    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise ValueError(f"The output file name must end in `.weights.h5`. Received: {output}")
    if model_name not in SUPPORTED_MODELS:
        build_model(model_name)  # raises the error naming the supported models
    log(f"Reading {checkpoint}")
    state_dict = read_state_dict(checkpoint)
    classifier = state_dict.get("classifier.weight")
    classes = int(classifier.shape[0]) if include_top and classifier is not None else 1000
    log(f"Building {model_name} (include_top={include_top}, classes={classes})")
    model = build_model(model_name, include_top=include_top, classes=classes)
    count = convert_state_dict(
        state_dict, model, model_name, include_top, source=os.path.basename(os.fspath(checkpoint))
    )
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    partial = os.path.join(parent, f".partial-{os.getpid()}-{os.path.basename(output)}")
    model.save_weights(partial)
    os.replace(partial, output)  # never leave a half-written file under the final name
    params = sum(math.prod(w.shape) for w in model.weights)
    log(f"Converted {count} tensors ({params:,} values) to {output}")
    return model


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, no usage block
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv=None):
    parser = _Parser(
        prog="python -m ghostnet_keras.convert_weights",
        description="Convert an official or timm GhostNet PyTorch checkpoint to Keras weights.",
    )
    parser.add_argument("--checkpoint", required=True, help=".pth or .safetensors state dict")
    parser.add_argument(
        "--model", default="ghostnet_100", choices=sorted(SUPPORTED_MODELS), help="model name"
    )
    parser.add_argument("--output", required=True, help="Keras weights file, *.weights.h5")
    parser.add_argument(
        "--include-top",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="convert the classification head too (--no-include-top: the backbone only)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        convert_checkpoint(
            args.checkpoint,
            args.model,
            args.output,
            include_top=args.include_top,
            log=lambda message: print(message, flush=True),
        )
    except (ValueError, ImportError, OSError) as err:
        first, *rest = str(err).splitlines() or [type(err).__name__]
        detail = f" Details: {'; '.join(s.strip() for s in rest)}" if rest else ""
        print(f"error: {first}{detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
