"""Classifies images with a `.tflite` file as a phone app does: through MediaPipe Tasks'
``ImageClassifier``, the same C++ task runtime as on Android, iOS and the web.

It reads what the app would read: the file's metadata (class names, input normalisation)
and nothing else, so a file that works here works in an app unchanged. The region of
interest is the evaluation's centre crop (``tflite.evaluate``, ``CROP_FRACTION`` of the
short side), the crop docs/deployment.md gives the apps.

    python -m tflite.classify --tflite=ghostnet_int8.tflite photo.jpg [more.jpg ...] [--top=5]

needs the ``mediapipe`` extra (installed on its own: setup.cfg says why).
"""

import math
import os

from ghostnet_keras import cli
from ghostnet_keras.constants import CROP_FRACTION
from tflite import _cli
from tflite import flatbuffer as fb

REQUIRED = (("mediapipe", "MediaPipe Tasks, the phone apps' classifier"),)


def classifier(flatbuffer, max_results=5):
    """A MediaPipe Tasks ``ImageClassifier`` (a context manager) of the ``.tflite`` bytes."""
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    options = vision.ImageClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_buffer=flatbuffer),
        max_results=max_results,
    )
    return vision.ImageClassifier.create_from_options(options)


def centre_crop(height, width, image_size, crop_fraction=CROP_FRACTION):
    """The evaluation's centre crop of a ``height`` x ``width`` image, as the normalised
    ``(left, top, right, bottom)`` region MediaPipe takes; the whole image when its short side
    is at most ``image_size`` (the evaluation then resizes it whole)."""
    short = min(height, width)
    if short <= image_size:
        return 0.0, 0.0, 1.0, 1.0
    # The evaluation resizes the short side to `target` and cuts the central image_size square.
    target = math.floor(image_size / crop_fraction)
    new_h = target if height <= width else target * height // short
    new_w = target if width <= height else target * width // short
    left = (new_w - image_size) // 2 / new_w
    top = (new_h - image_size) // 2 / new_h
    return left, top, left + image_size / new_w, top + image_size / new_h


def classify(flatbuffer, images, top=5, crop_fraction=CROP_FRACTION):
    """MediaPipe's ``top`` classes of each RGB uint8 image (``[H, W, 3]`` arrays) as lists of
    ``(index, name, score)``, best first; ``name`` is ``None`` when the file has no labels."""
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python.components.containers import rect
    from mediapipe.tasks.python.vision.core import image_processing_options

    graph = fb.read(flatbuffer).subgraphs[0]
    size = int(graph.tensors[graph.inputs[0]].shape[1])  # (1, size, size, 3)
    results = []
    with cli.quiet_native():  # MediaPipe's start-up lines from C++ (XNNPACK's note)
        task = classifier(flatbuffer, max_results=top)
    with task:
        for pixels in images:
            pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
            left, top_, right, bottom = centre_crop(*pixels.shape[:2], size, crop_fraction)
            region = image_processing_options.ImageProcessingOptions(
                region_of_interest=rect.RectF(left=left, top=top_, right=right, bottom=bottom)
            )
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
            categories = task.classify(image, region).classifications[0].categories
            results.append([(c.index, c.category_name or None, c.score) for c in categories])
    return results


def _parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tflite.classify",
        description="Classify images with a .tflite file through MediaPipe Tasks, as an app does.",
    )
    parser.add_argument("--tflite", required=True, help="the .tflite file (with metadata)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    _cli.add_verbose(parser)
    return parser.parse_args(argv)


def _validate_args(args):
    fb.check_file(args.tflite, "tflite")
    if args.top < 1:
        raise ValueError(f"`--top` must be at least 1. Received: top={args.top}")
    for path in args.images:
        if not os.path.isfile(path):
            raise ValueError(f"The image file does not exist. Received: image={path!r}")


def run(args):
    """The command line's work: prints each image's top classes; returns them."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    flatbuffer = fb.read_file(args.tflite, "tflite")
    images = []
    for path in args.images:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(
                f"{path} is not an image Pillow can read. Received: image={path!r}"
            ) from err
    results = classify(flatbuffer, images, top=args.top)
    for path, classes in zip(args.images, results, strict=True):
        named = ", ".join(
            f"{name if name is not None else f'class {index}'} {score:.3f}"
            for index, name, score in classes
        )
        print(f"{path}: {named}")
    return results


def main(argv=None):
    return _cli.run_cli(
        _parse_args, run, argv, required=REQUIRED, validate=_validate_args, extra="mediapipe"
    )


if __name__ == "__main__":
    raise SystemExit(main())
