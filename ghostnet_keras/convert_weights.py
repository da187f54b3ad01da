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
package (the ``convert`` extra; the error names the command that installs it where this
package came from); the converted ``.weights.h5`` file loads with Keras alone.

Every Keras weight is assigned exactly once and every checkpoint tensor is used
(``num_batches_tracked`` counters aside, and the head's tensors when converting without the
top); anything else is an error that names the first mismatching tensors.
"""

import argparse
import sys

from ghostnet_keras import cli, converters, extras
from ghostnet_keras.converters.convert import build_model, convert_checkpoint
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


def main(argv=None):
    parser = cli.OneLineParser(
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
    try:
        # Keras first, as `import ghostnet_keras` did before it became lazy; quietly. A core
        # install has no backend: one line naming the extra, not "No module named ...".
        with cli.quiet_imports():
            extras.require_keras("converting weights")
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
        print(f"error: {cli.error_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
