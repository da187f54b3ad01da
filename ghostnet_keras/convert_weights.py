"""Converts published PyTorch and PaddlePaddle checkpoints to Keras weights.

    python -m ghostnet_keras.convert_weights --checkpoint=ghostnet_1x.pth \\
        --model=ghostnet_100 --output=ghostnet_100.weights.h5
    python -m ghostnet_keras.convert_weights --checkpoint=g_ghost_regnet_3.2g_77.8.pth \\
        --model=g_ghost_regnetx_032 --output=g_ghost_regnetx_032.weights.h5
    python -m ghostnet_keras.convert_weights --model=resnet50 --output=resnet50.weights.h5

Without ``--checkpoint`` the published checkpoint of ``--model`` is downloaded (and checked)
as ``weights="imagenet"`` does. The converter is chosen from the model and the file type
(``--converter`` forces one; ``ghostnet_keras.converters`` lists them): the official
C-GhostNet and G-Ghost RegNet code, timm, torchvision, and PaddleClas (``.pdparams``, read
without PaddlePaddle, converted into the ``paddleclas`` variant of GhostNet).

Reading a ``.pth`` file needs PyTorch, and a ``.safetensors`` file the ``safetensors``
package (``pip install "ghostnet-keras[convert]"``); the converted ``.weights.h5`` file loads
with Keras alone.

Every Keras weight is assigned exactly once and every checkpoint tensor is used
(``num_batches_tracked`` counters aside, and the head's tensors when converting without the
top); anything else is an error that names the first mismatching tensors.
"""

import argparse
import math
import os
import sys

from ghostnet_keras import converters
from ghostnet_keras.converters.core import MAX_REPORTED, convert_state_dict, weight_plan
from ghostnet_keras.converters.readers import read_state_dict

__all__ = [
    "MAX_REPORTED",
    "build_model",
    "convert_checkpoint",
    "convert_state_dict",
    "main",
    "read_state_dict",
    "weight_plan",
]


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


def convert_checkpoint(checkpoint, model_name, output, include_top=True, log=None, converter=None):
    """Converts ``checkpoint`` (a file path) to Keras weights for ``model_name``.

    Writes ``output`` (a ``.weights.h5`` file, loadable with the builder's
    ``weights=output`` and the same ``include_top``) atomically and returns the converted
    Keras model. The number of classes is read from the checkpoint's classifier;
    ``converter`` names a converter of ``ghostnet_keras.converters`` (default: chosen from
    the model and the file type). ``log`` is called with progress messages.
    """
    from ghostnet_keras.files import atomic_path

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
    with atomic_path(output) as tmp:  # never a half-written file under the final name
        model.save_weights(tmp)
    params = sum(math.prod(w.shape) for w in model.weights)
    log(f"Converted {count} tensors ({params:,} values, {mapping.title}) to {output}")
    return model


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, no usage block
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv=None):
    parser = _Parser(
        prog="python -m ghostnet_keras.convert_weights",
        description="Convert a published PyTorch or PaddlePaddle checkpoint to Keras weights.",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help=".pth, .safetensors or .pdparams file (default: download the published one)",
    )
    parser.add_argument(
        "--model",
        default="ghostnet_100",
        choices=converters.convertible_models(),
        metavar="MODEL",
        help=f"registry name: {', '.join(converters.convertible_models())}",
    )
    parser.add_argument("--output", required=True, help="Keras weights file, *.weights.h5")
    parser.add_argument(
        "--include-top",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="convert the classification head too (--no-include-top: the backbone only)",
    )
    parser.add_argument(
        "--converter",
        default=None,
        choices=sorted(converters.CONVERTERS),
        help="force a converter (default: chosen from the model and the file type)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        checkpoint, converter = args.checkpoint, args.converter
        if checkpoint is None:
            from ghostnet_keras import pretrained

            entry = pretrained.check_available(args.model)
            checkpoint = pretrained.fetch_checkpoint(args.model)
            converter = converter or entry.converter
        convert_checkpoint(
            checkpoint,
            args.model,
            args.output,
            include_top=args.include_top,
            log=lambda message: print(message, flush=True),
            converter=converter,
        )
    except (ValueError, ImportError, OSError) as err:
        first, *rest = str(err).splitlines() or [type(err).__name__]
        detail = f" Details: {'; '.join(s.strip() for s in rest)}" if rest else ""
        print(f"error: {first}{detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
