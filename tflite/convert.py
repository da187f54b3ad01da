"""Converts a Keras model to the mobile `.tflite` file that ships: the command line of
:func:`tflite.export.export` (graph rewrites, conversion, flatbuffer rewrites, metadata).

Every file has a fixed batch-1 input and TFLite builtin ops only; a classifier's file carries
LiteRT model metadata (its name, description, version, license, RGB input, class names) that
MediaPipe Tasks and the LiteRT support library read. The conversion step itself is
:mod:`tflite.converter`, whose functions are also importable from here.

Library:

    model = load_model("ghostnet_100", weights="imagenet")
    flatbuffer = convert_model(model, quantize="int8", io="uint8",
                               representative_images=images)  # float32 0-255, (N, H, W, 3)
    # or the whole chain, metadata included:
    flatbuffer = export.export(model, export.ExportOptions(quantize="int8", io="uint8"),
                               representative_images=images)

Command line (see ``--help``):

    python -m tflite.convert --model=ghostnet_100 --weights=imagenet --quantize=int8 \\
        --io=uint8 --calibration_data=folder:/data/imagenette/train --output=ghostnet.tflite
"""

import os
import sys

import numpy as np

from tflite import _cli, export
from tflite.converter import (
    IO_CHOICES,
    QUANTIZE_CHOICES,
    convert_model,
    convert_variants,
    iterate_images,
    load_model,
    model_image_shape,
)

__all__ = [
    "IO_CHOICES",
    "QUANTIZE_CHOICES",
    "convert_model",
    "convert_variants",
    "iterate_images",
    "load_model",
    "model_image_shape",
]


# The labels file the trainer writes beside model.keras in its model_dir.
def _parse_args(argv):
    import argparse

    from ghostnet_keras.constants import CROP_FRACTION

    parser = argparse.ArgumentParser(
        prog="python -m tflite.convert",
        description="Convert a registry model or a .keras file to a batch-1 .tflite file.",
    )
    add = parser.add_argument
    add("--model", required=True, help="registry name (ghostnet_100, ...) or PATH.keras")
    add("--weights", default=None, help="None, 'imagenet' or a weights file")
    export.add_flags(parser)  # --quantize, --io, --metadata, --labels, ...: ExportOptions
    add("--calibration_data", default=None, help="folder:PATH or a TFDS name (int8, check)")
    add("--image_size", type=int, default=None, help="square input size for a registry model")
    add(
        "--crop_fraction",
        type=float,
        default=CROP_FRACTION,
        help=f"centre crop of the eval transform (default {CROP_FRACTION})",
    )
    add("--data_dir", default=None, help="TFDS data directory")
    add("--output", required=True, help="PATH.tflite to write")
    add("--check", dest="check", action="store_true", default=True, help="compare (default)")
    add("--nocheck", dest="check", action="store_false", help="skip the comparison with Keras")
    add("--check_images", type=int, default=100, help="images of the check (default 100)")
    add("--qat_epochs", type=int, default=0, help="quantization-aware training epochs (int8)")
    add("--qat_data", default=None, help="QAT training data: folder:PATH or a TFDS name")
    add("--qat_steps", type=int, default=None, help="QAT steps per epoch (default: all data)")
    _cli.add_verbose(parser)
    return parser.parse_args(argv)


def stored_labels(model):
    """The class names kept with a saved model (``ghostnet_keras.labels``: the trainer's
    ``labels.txt`` member of the ``.keras`` file, or the ``labels.txt`` beside it), or None."""
    from ghostnet_keras import labels

    model = os.fspath(model)
    if not model.endswith(".keras"):
        return None
    names = labels.load_labels(model)
    return tuple(names) if names is not None else None


def _options(args):
    """The :class:`tflite.export.ExportOptions` of the command line."""
    return export.options_from_args(args, labels=stored_labels(args.model))


def _validate_args(args):
    _cli.check_output(args.output, "output", ".tflite")
    _options(args)  # the export settings: choices, int8 io with metadata, the labels file
    if args.check_images < 1:
        raise ValueError(f"`--check_images` must be at least 1. Received: {args.check_images=}")
    if args.qat_epochs < 0:
        raise ValueError(f"`--qat_epochs` must be >= 0. Received: qat_epochs={args.qat_epochs}")
    if args.qat_epochs:
        if args.quantize != "int8":
            raise ValueError(
                "Quantization-aware training makes int8 models: add --quantize=int8. "
                f"Received: quantize={args.quantize!r}"
            )
        if not args.qat_data:
            raise ValueError(
                "`--qat_epochs` needs training images: --qat_data=folder:PATH or a TFDS name. "
                "Received: qat_data=None"
            )
    elif args.quantize == "int8" and not args.calibration_data:
        raise ValueError(
            "int8 quantization needs real calibration images: --calibration_data=folder:PATH "
            "or a TFDS name. Received: calibration_data=None"
        )


def _weights_license(args):
    """The metadata's license for published weights: the package's, and where the weights
    come from; None (the package's license) otherwise."""
    if args.weights != "imagenet" or args.model.endswith(".keras"):
        return None
    from ghostnet_keras.registry import get_pretrained

    entry = get_pretrained(args.model)
    if isinstance(entry, dict):
        entry = entry.get("")
    if entry is None:
        return None
    source = f"{entry.source}, " if entry.source else ""
    return f"{export.LICENSE} (code); weights converted from {source}{entry.url}: see its license"


def _stderr(line):
    print(line, file=sys.stderr, flush=True)


def run(args):
    """The command line's work, on parsed arguments; returns the flatbuffer."""
    import dataclasses
    import time

    from ghostnet_keras.data import image_source

    _validate_args(args)
    options = _options(args)
    kwargs = {}
    if args.image_size is not None and not args.model.endswith(".keras"):
        kwargs["input_shape"] = (args.image_size, args.image_size, 3)
    model = load_model(args.model, weights=args.weights, **kwargs)
    if options.reparameterize:  # GhostNetV3: the deployment form (other models: unchanged)
        import ghostnet_keras

        model = ghostnet_keras.reparameterize(model)
    height, width, _ = model_image_shape(model, args.image_size)
    if height != width:
        raise ValueError(f"Only square inputs are supported. Received: input={height}x{width}")
    print(f"Model {args.model}: input {height}x{width}x3, {model.count_params():,} parameters")
    name = model.name if args.model.endswith(".keras") else args.model
    options = dataclasses.replace(
        options, name=options.name or name, license=options.license or _weights_license(args)
    )
    export.check_model(model, options)  # labels that do not fit: before any work

    check = None
    if args.check:  # read first: QAT also predicts on these images with its Keras model
        data = args.calibration_data or args.qat_data
        if data:
            source = image_source(
                data,
                "eval",
                image_size=height,
                num_images=args.check_images,
                crop_fraction=args.crop_fraction,
                data_dir=args.data_dir,
            )
            batches = list(source.batches)
            check_x = np.concatenate([x for x, _ in batches])
            check_y = None if batches[0][1] is None else np.concatenate([y for _, y in batches])
            check = (check_x, check_y, source.class_names, source.description)
        else:
            check_x = np.random.default_rng(0).uniform(
                0, 255, (args.check_images, height, width, 3)
            )
            what = f"{args.check_images} random images (no --calibration_data)"
            check = (check_x.astype("float32"), None, None, what)

    start = time.time()
    qat_predictions = None
    if args.qat_epochs:
        from tflite import qat

        print(f"Quantization-aware training for {args.qat_epochs} epoch(s) on {args.qat_data}")
        flatbuffer = qat.qat_int8(
            model,
            args.qat_data,
            epochs=args.qat_epochs,
            steps_per_epoch=args.qat_steps,
            image_size=height,
            options=options,
            data_dir=args.data_dir,
            predict_images=None if check is None else check[0],
            progress=lambda line: print(line, flush=True),
            log=_stderr,
        )
        if check is not None:
            flatbuffer, qat_predictions = flatbuffer
    else:
        calibration = None
        if options.quantize == "int8":
            source = image_source(
                args.calibration_data,
                "calibration",
                image_size=height,
                num_images=options.num_calibration,
                crop_fraction=args.crop_fraction,
                data_dir=args.data_dir,
            )
            calibration = np.concatenate([x for x, _ in source.batches])
            print(f"Calibrating on {len(calibration)} images ({source.description})")
        print(f"Converting (quantize={options.quantize}, io={options.io})...", flush=True)
        flatbuffer = export.export(
            model, options, representative_images=calibration, image_size=height, log=_stderr
        )
    from ghostnet_keras import files

    files.write_bytes(args.output, flatbuffer)
    print(f"Wrote {args.output} ({len(flatbuffer):,} bytes) in {time.time() - start:.0f} s")

    if check is not None:
        from tflite import evaluate

        check_x, check_y, names, what = check
        result = evaluate.check_conversion(
            model, flatbuffer, [(check_x, check_y)], class_names=names, num_images=len(check_x)
        )
        label = "the Keras model before QAT" if args.qat_epochs else "Keras"
        print(f"Check against {label} on {what}:")
        for line in evaluate.format_result(result).splitlines():
            print(f"  {line}")
        if qat_predictions is not None:
            got = evaluate.TFLiteClassifier(flatbuffer, scores_only=False).predict(check_x)
            expected = np.asarray(qat_predictions, "float32").reshape(got.shape)
            print("Check against the QAT Keras model (fake quantization) on the same images:")
            agreement = (got.argmax(1) == expected.argmax(1)).mean()
            print(f"  top-1 agreement: {100 * agreement:.2f}%")
            print(f"  output max |diff|: {np.abs(got - expected).max():.3g}")
    return flatbuffer


def main(argv=None):
    return _cli.run_cli(_parse_args, run, argv, validate=_validate_args)


if __name__ == "__main__":
    raise SystemExit(main())
