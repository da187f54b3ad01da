"""Evaluates a `.tflite` image classifier on labelled images, optionally against Keras.

Works on our exports and on `.tflite` files made elsewhere: float or quantized (uint8/int8)
input and output, 1000 classes or 1001 with a background class first, a fixed or dynamic
batch dimension. Runs the LiteRT interpreter on one thread, as a phone benchmark does.

Input convention: images are RGB with values in [0, 255]. A quantized (uint8 or int8) input
takes the raw pixel values (int8: pixel - 128), whatever its quantization scale, as
LiteRT's own image tools do; a float input takes ``(pixel - input_mean) / input_std``
(defaults 0 and 1: our models normalise in their graph; MobileNet-style float models take
``input_mean=127.5, input_std=127.5``).

Command line:

    python -m tflite.evaluate --tflite=model.tflite --data=folder:/data/imagenette/val \\
        [--keras_model=ghostnet_100 --weights=imagenet] [--num_images=500]
"""

import dataclasses
import json
import os

import numpy as np

from tflite import _cli, latency
from tflite import flatbuffer as fb

BACKGROUND_CHOICES = ("auto", "yes", "no")


# The output types of class scores: float, or quantized (dequantized with the output's scale).
SCORE_TYPES = (np.float32, np.float16, np.uint8, np.int8)


def _shapes(shapes, noun="input"):
    """``"1 input (1, 8, 8, 3)"``, ``"2 outputs (1, 10, 4) and (1, 10)"``: for messages."""
    if not shapes:
        return f"no {noun}"
    listed = [str(s) for s in shapes]
    joined = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    return f"{len(shapes)} {noun}{'s' if len(shapes) > 1 else ''} {joined}"


def _class_scores(outputs, image_input, name):
    """The output details of a classifier's class scores, or a ``ValueError`` naming the file.

    A classifier has exactly one output, of a score type, with shape ``(batch, N)`` (the
    input's batch) or, for a batch-1 input, ``(N,)``; N >= 2 classes.
    """
    shapes = [tuple(int(d) for d in o["shape"]) for o in outputs]
    batch = int(image_input["shape"][0])
    if len(outputs) == 1:
        output, shape = outputs[0], shapes[0]
        fits = shape[:-1] == (batch,) or (shape[:-1] == () and batch == 1)
        if fits and shape[-1] >= 2 and np.dtype(output["dtype"]) in SCORE_TYPES:
            return output
        kind = f" {np.dtype(output['dtype']).name}" if fits and shape[-1] >= 2 else ""
    else:
        kind = ""
    raise ValueError(
        f"{name} is not a classifier: it has {_shapes(shapes, 'output')}{kind}, where "
        "tflite.evaluate takes one output of class scores, (batch, classes) or (classes,), "
        f"float or quantized, with at least 2 classes. Received: tflite={name!r}"
    )


class TFLiteClassifier:
    """A `.tflite` image classifier that takes float32 0-255 RGB images.

    Args:
        model: the path of a `.tflite` file or its bytes.
        num_threads: interpreter threads (1: the phone-benchmark setting).
        input_mean, input_std: the normalisation of a float input (see the module doc).
        background: whether the first output is a background class to drop:
            ``"auto"`` (yes when there are 1001 outputs), ``"yes"`` or ``"no"``.
        scores_only: refuse a file whose outputs are not one tensor of class scores
            (``(batch, N)``, or ``(N,)`` for a batch-1 input, N >= 2). ``False`` takes the
            first output, flattened, whatever it is: for comparing any converted model with
            its Keras model.
    """

    def __init__(
        self,
        model,
        *,
        num_threads=1,
        input_mean=0.0,
        input_std=1.0,
        background="auto",
        scores_only=True,
    ):
        if background not in BACKGROUND_CHOICES:
            raise ValueError(
                "`background` must be one of 'auto', 'yes', 'no'. "
                f"Received: background={background!r}"
            )
        if not input_std:
            raise ValueError(f"`input_std` must not be 0. Received: input_std={input_std!r}")
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
            raise ValueError(
                f"`num_threads` must be a positive integer. Received: num_threads={num_threads!r}"
            )
        if isinstance(model, (bytes, bytearray)):
            content, self.name = bytes(model), "<bytes>"
        else:
            self.name = os.fspath(model)
            content = fb.read_file(self.name, "tflite")
        self.interpreter = latency.load_interpreter(
            content, num_threads, source=self.name, argument="tflite"
        )
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][-1] != 3:
            shapes = [tuple(int(d) for d in i["shape"]) for i in inputs]
            raise ValueError(
                f"{self.name} is not an image classifier: it has {_shapes(shapes)}, where "
                "tflite.evaluate takes one (batch, height, width, 3) image input. "
                f"Received: tflite={self.name!r}"
            )
        self.input = inputs[0]
        outputs = self.interpreter.get_output_details()
        if scores_only:
            self.output = _class_scores(outputs, self.input, self.name)
        else:
            self.output = outputs[0]
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        signature = self.input.get("shape_signature", self.input["shape"])
        self.dynamic_batch = int(signature[0]) == -1
        self.batch_size = int(self.input["shape"][0])
        self.image_size = (int(self.input["shape"][1]), int(self.input["shape"][2]))
        self.input_dtype = np.dtype(self.input["dtype"])
        shape = self.output["shape"]
        outputs = int(np.prod(shape[1:] if len(shape) > 1 else shape))
        self.background = background == "yes" or (background == "auto" and outputs == 1001)
        self.num_classes = outputs - int(self.background)

    def _prepare(self, images):
        if self.input_dtype == np.float32:
            return ((images - self.input_mean) / self.input_std).astype("float32")
        if self.input_dtype == np.uint8:
            return np.clip(np.round(images), 0, 255).astype("uint8")
        if self.input_dtype == np.int8:
            return (np.clip(np.round(images), 0, 255) - 128).astype("int8")
        raise ValueError(
            "The model input must be float32, uint8 or int8. "
            f"Received: input dtype={self.input_dtype.name}"
        )

    def _run(self, batch):
        self.interpreter.set_tensor(self.input["index"], batch)
        latency.invoke(self.interpreter, source=self.name, argument="tflite")
        out = self.interpreter.get_tensor(self.output["index"])
        if np.issubdtype(out.dtype, np.integer):
            scale, zero_point = self.output["quantization"]
            out = (out.astype("float32") - zero_point) * (scale if scale else 1.0)
        return out.reshape(len(batch), -1).astype("float32")

    def predict(self, images):
        """Class scores ``(N, num_classes)`` for float32 0-255 images ``(N, H, W, 3)``."""
        images = np.asarray(images, dtype="float32")
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or tuple(images.shape[1:3]) != self.image_size:
            raise ValueError(
                f"The images must be {self.image_size[0]}x{self.image_size[1]}x3 for this "
                f"model. Received: images.shape={images.shape}"
            )
        data = self._prepare(images)
        if self.dynamic_batch and len(data) != self.batch_size:
            self.interpreter.resize_tensor_input(self.input["index"], [len(data), *data.shape[1:]])
            self.interpreter.allocate_tensors()
            self.batch_size = len(data)
        step = self.batch_size
        outputs = []
        for start in range(0, len(data), step):
            batch = data[start : start + step]
            count = len(batch)
            if count < step:  # pad the last batch of a fixed-batch model
                batch = np.concatenate([batch, np.repeat(batch[-1:], step - count, 0)])
            outputs.append(self._run(batch)[:count])
        scores = np.concatenate(outputs)
        return scores[:, 1:] if self.background else scores


def imagenet_wnids():
    """The 1000 WordNet ids of the ImageNet-1k classes, in class-index order."""
    import ghostnet_keras.imagenet as imagenet

    with open(imagenet._CLASSES_FILE) as f:
        return [wnid for wnid, _ in json.load(f)]


def label_mapping(class_names, num_classes):
    """Maps the data set's labels (indices into ``class_names``) to model class indices.

    Returns ``None`` when they are the same; for a 1000-class model and data folders named
    by ImageNet WordNet ids (``n01440764``, ...), the array of ImageNet indices. Raises a
    ``ValueError`` when the class counts differ otherwise.
    """
    class_names = list(class_names or [])
    if num_classes == 1000 and class_names:
        index = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
        if all(name in index for name in class_names):
            mapping = np.array([index[name] for name in class_names])
            return None if np.array_equal(mapping, np.arange(len(mapping))) else mapping
    if class_names and len(class_names) != num_classes:
        raise ValueError(
            f"The data has {len(class_names)} classes but the model {num_classes}, and the "
            "class folders are not ImageNet WordNet ids (n01440764, ...) of a 1000-class "
            f"model. Received: classes={list(class_names[:5])}"
            f"{'...' if len(class_names) > 5 else ''}"
        )
    return None


def _keras_scores(keras_model, images, num_classes):
    scores = np.asarray(keras_model.predict(images, batch_size=32, verbose=0), "float32")
    scores = scores.reshape(len(images), -1)
    if scores.shape[1] == num_classes + 1:
        scores = scores[:, 1:]
    return scores


def evaluate(classifier, batches, *, class_names=None, keras_model=None, num_images=None):
    """Top-1/top-5 accuracy of ``classifier`` on labelled images, and its agreement with Keras.

    Args:
        classifier: a :class:`TFLiteClassifier`.
        batches: an iterable of ``(images, labels)`` batches (float32 0-255 images, int labels
            indexing ``class_names``, or None for unlabelled images: then only the
            comparison with Keras is made), e.g. ``ghostnet_keras.data.make_dataset(...)``.
        class_names: the data set's class names (maps WordNet-id folders to ImageNet).
        keras_model: the Keras model the file was converted from, if any.
        num_images: stop after this many images.

    Returns:
        A dict: ``images``, ``top1``, ``top5`` and, with ``keras_model``, ``keras_top1``,
        ``agreement`` (fraction of equal top-1 predictions), ``max_abs_diff`` and
        ``mean_abs_diff`` (of the output scores).
    """
    mapping = label_mapping(class_names, classifier.num_classes)
    k = min(5, classifier.num_classes)
    tally = _Tally()
    for images, labels in batches:
        images = np.asarray(images, "float32")
        if num_images is not None:
            images = images[: num_images - tally.count]
        if len(images) == 0:
            break
        scores = classifier.predict(images)
        if labels is None:
            tally.labelled = False
        else:
            labels = _class_indices(labels, len(images), mapping)
            tally.add_accuracy(scores, labels, k)
        if keras_model is not None:
            expected = _keras_scores(keras_model, images, classifier.num_classes)
            if expected.shape != scores.shape:
                raise ValueError(
                    "The Keras model and the .tflite have different outputs. Received: "
                    f"keras output shape={expected.shape}, tflite output shape={scores.shape}"
                )
            tally.add_keras(expected, scores, labels)
        tally.count += len(images)
        if num_images is not None and tally.count >= num_images:
            break
    if tally.count == 0:
        raise ValueError("The data yielded no image. Received: images=0")
    return tally.result(keras_model is not None)


def _class_indices(labels, count, mapping):
    """The first ``count`` labels as int64 class indices of the model (one-hot labels
    reduced, folder classes mapped through ``mapping``)."""
    labels = np.asarray(labels)[:count]
    if labels.ndim > 1:  # one-hot
        labels = labels.argmax(-1)
    return labels.astype("int64") if mapping is None else mapping[labels]


@dataclasses.dataclass
class _Tally:
    """The running counts of :func:`evaluate`."""

    count: int = 0
    top1: int = 0
    top5: int = 0
    keras_top1: int = 0
    agree: int = 0
    max_diff: float = 0.0
    sum_diff: float = 0.0
    labelled: bool = True

    def add_accuracy(self, scores, labels, k):
        best = np.argsort(-scores, axis=1)[:, :k]
        self.top1 += int((best[:, 0] == labels).sum())
        self.top5 += int((best == labels[:, None]).any(axis=1).sum())

    def add_keras(self, expected, scores, labels):
        """The Keras model's accuracy and its agreement with the file's ``scores``."""
        if labels is not None:
            self.keras_top1 += int((expected.argmax(1) == labels).sum())
        self.agree += int((expected.argmax(1) == scores.argmax(1)).sum())
        diff = np.abs(expected - scores)
        self.max_diff = max(self.max_diff, float(diff.max()))
        self.sum_diff += float(diff.mean(axis=1).sum())

    def result(self, with_keras):
        count = self.count
        result = {"images": count}
        if self.labelled:
            result.update(top1=self.top1 / count, top5=self.top5 / count)
        if with_keras:
            if self.labelled:
                result["keras_top1"] = self.keras_top1 / count
            result.update(
                agreement=self.agree / count,
                max_abs_diff=self.max_diff,
                mean_abs_diff=self.sum_diff / count,
            )
        return result


def format_result(result):
    """One line per number, for the command line."""
    lines = [f"images: {result['images']}"]
    if "top1" in result:
        lines += [f"top-1: {100 * result['top1']:.2f}%", f"top-5: {100 * result['top5']:.2f}%"]
    if "keras_top1" in result:
        lines.append(f"keras top-1: {100 * result['keras_top1']:.2f}%")
    if "agreement" in result:
        lines += [
            f"top-1 agreement with keras: {100 * result['agreement']:.2f}%",
            f"output max |diff|: {result['max_abs_diff']:.3g}",
            f"output mean |diff|: {result['mean_abs_diff']:.3g}",
        ]
    return "\n".join(lines)


def check_conversion(model, flatbuffer, batches, *, class_names=None, num_images=100):
    """Runs images through the Keras model and the `.tflite`; returns the :func:`evaluate`
    numbers (accuracy only where the labels fit the model). Any model: a feature extractor's
    (first) output is compared as it is."""
    classifier = TFLiteClassifier(flatbuffer, scores_only=False)
    try:
        label_mapping(class_names, classifier.num_classes)
        usable = class_names is not None
    except ValueError:  # labels of other classes than the model's: compare outputs only
        usable = False
    if not usable:
        batches = ((x, None) for x, _ in batches)
        class_names = None
    return evaluate(
        classifier, batches, class_names=class_names, keras_model=model, num_images=num_images
    )


def _parse_args(argv):
    import argparse

    from ghostnet_keras.constants import CROP_FRACTION

    parser = argparse.ArgumentParser(
        prog="python -m tflite.evaluate",
        description="Top-1/top-5 of a .tflite classifier, and its agreement with Keras.",
    )
    add = parser.add_argument
    add("--tflite", required=True, help="the .tflite file")
    add("--data", required=True, help="labelled images: folder:PATH or a TFDS name")
    add("--keras_model", default=None, help="registry name or PATH.keras to compare with")
    add("--weights", default=None, help="weights of --keras_model: 'imagenet' or a file")
    add("--num_images", type=int, default=None, help="evaluate this many images (default all)")
    add("--batch_size", type=int, default=32, help="images read at a time")
    add(
        "--crop_fraction",
        type=float,
        default=CROP_FRACTION,
        help=f"centre crop of the eval transform (default {CROP_FRACTION})",
    )
    add("--input_mean", type=float, default=0.0, help="float input = (pixel - mean) / std")
    add("--input_std", type=float, default=1.0, help="(127.5 and 127.5 for MobileNet files)")
    add("--background", default="auto", help="first output is a background class: auto|yes|no")
    add("--num_threads", type=int, default=1, help="interpreter threads (default 1)")
    add("--data_dir", default=None, help="TFDS data directory")
    _cli.add_verbose(parser)
    return parser.parse_args(argv)


def _validate_args(args):
    fb.check_file(args.tflite, "tflite")
    if args.num_images is not None and args.num_images < 1:
        raise ValueError(
            f"`--num_images` must be at least 1. Received: num_images={args.num_images}"
        )
    for name in ("batch_size", "num_threads"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"`--{name}` must be at least 1. Received: {name}={getattr(args, name)}"
            )
    if args.background not in BACKGROUND_CHOICES:
        raise ValueError(
            f"`--background` must be one of auto, yes, no. Received: background={args.background!r}"
        )


def run(args):
    """The command line's work, on parsed arguments; returns the result dict."""
    from ghostnet_keras.data import image_source
    from tflite import models

    _validate_args(args)
    classifier = TFLiteClassifier(
        args.tflite,
        num_threads=args.num_threads,
        input_mean=args.input_mean,
        input_std=args.input_std,
        background=args.background,
    )
    height, width = classifier.image_size
    if height != width:
        raise ValueError(f"Only square inputs are supported. Received: input={height}x{width}")
    keras_model = None
    if args.keras_model:
        kwargs = {}
        if not args.keras_model.endswith(".keras"):
            kwargs["input_shape"] = (height, width, 3)
        keras_model = models.load_model(args.keras_model, weights=args.weights, **kwargs)
        models.model_image_shape(keras_model, height)  # the same input size, or an error
    source = image_source(
        args.data,
        "eval",
        image_size=height,
        num_images=args.num_images or 10**9,
        batch_size=args.batch_size,
        crop_fraction=args.crop_fraction,
        data_dir=args.data_dir,
    )
    if source.class_names is None:
        raise ValueError(
            "Evaluation needs labelled images: PATH/<class>/* folders (or PATH/val/<class>/*) "
            f"or a TFDS name. Received: data={args.data!r}"
        )
    dropped = ", background dropped" if classifier.background else ""
    print(
        f"Evaluating {args.tflite} ({classifier.input_dtype.name} input {height}x{width}, "
        f"{classifier.num_classes} classes{dropped}) on {source.description}",
        flush=True,
    )
    result = evaluate(
        classifier,
        source.batches,
        class_names=source.class_names,
        keras_model=keras_model,
        num_images=args.num_images,
    )
    print(format_result(result))
    return result


def main(argv=None):
    return _cli.run_cli(_parse_args, run, argv, validate=_validate_args)


if __name__ == "__main__":
    raise SystemExit(main())
