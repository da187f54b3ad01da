"""Model complexity in the paper's columns: parameters, multiply-adds, activations.

The function is :func:`profile` (``ghostnet_keras.profile``); the command line:

python -m ghostnet_keras.profiler ghostnet_100
python -m ghostnet_keras.profiler ghostnet_050 ghostnet_100 --input_size=320
python -m ghostnet_keras.profiler all
python -m ghostnet_keras.profiler ghostnet_100 --image=cat.jpg --weights=PATH.weights.h5
"""

import argparse
import math
import os
import sys

from ghostnet_keras import cli, extras

# Run as the command line, TensorFlow's start-up lines are hidden; imported, nothing changes.
# Without a Keras backend (a core install), the command line says so in one line.
try:
    with cli.quiet_imports(verbose=__name__ != "__main__"):
        keras = extras.require_keras("the profiler")
except extras.MissingExtraError as err:
    if __name__ != "__main__":
        raise
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
layers = keras.layers

_COUNTED = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)


def static_copy(model, input_shape):
    """Rebuilds ``model`` (Functional, weights not copied) with a fixed input shape."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *input_shape]
    return model.__class__.from_config(config)


def image_shape(model, input_shape=None):
    """``(height, width, channels)`` of ``model``'s input at ``input_shape`` (a shape, an int
    for a square image, or ``None``: the model's own, 224x224 where it is unknown); a
    ``ValueError`` for anything else."""
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
    shape = image_shape(model, input_shape)
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


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m ghostnet_keras.profiler",
        description="Parameters, multiply-adds and activations of registry models.",
    )
    parser.add_argument("models", nargs="+", help="registry names, or 'all'")
    parser.add_argument("--input_size", type=int, default=None, help="square input side")
    parser.add_argument("--image", help="run this image through the (first) model, print top-5")
    parser.add_argument("--weights", default=None, help="None, 'imagenet' or a weights file")
    return parser.parse_args(argv)


def _table(rows):
    lines = [
        "| model | input | params | MACs | activations |",
        "|---|---|---:|---:|---:|",
    ]
    for name, p in rows:
        size = "x".join(str(d) for d in p["input_shape"][:2])
        lines.append(
            f"| {name} | {size} | {p['params']:,} | {p['macs'] / 1e6:,.1f}M "
            f"| {p['activations'] / 1e6:,.2f}M |"
        )
    return "\n".join(lines)


def _predict(model, image_path):
    import numpy as np
    from PIL import Image

    from ghostnet_keras.imagenet import decode_predictions

    size = model.input_shape[1] or 224
    with Image.open(image_path) as img:
        img = img.convert("RGB").resize((size, size), Image.BICUBIC)
    x = np.asarray(img, dtype="float32")[None]
    preds = model.predict(x, verbose=0)
    if preds.shape[-1] in (1000, 1001):
        return [f"{wnid} {label}: {p:.4f}" for wnid, label, p in decode_predictions(preds)[0]]
    best = np.argsort(preds[0])[::-1][:5]
    return [f"class {i}: {preds[0, i]:.4f}" for i in best]


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    # Importing the registry imports the package, which registers every model.
    from ghostnet_keras import registry
    from ghostnet_keras.extras import MissingExtraError

    try:
        names = registry.list_models() if args.models == ["all"] else args.models
        for name in names:
            registry.get_builder(name)
        if args.image and not os.path.isfile(args.image):
            raise ValueError(f"No such image file. Received: --image={args.image!r}")
        rows = []
        first = None
        for name in names:
            model = registry.create_model(name, weights=args.weights)
            first = first or model
            rows.append((name, profile(model, args.input_size)))
            print(_table(rows[-1:]).splitlines()[-1] if len(rows) > 1 else _table(rows), flush=True)
        if args.image:
            print(f"\nTop-5 of {names[0]} (weights={args.weights}) for {args.image}:")
            for line in _predict(first, args.image):
                print(f"  {line}")
    except (ValueError, OSError, MissingExtraError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
