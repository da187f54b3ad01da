"""The one export chain from a Keras classifier to the `.tflite` file that ships.

:func:`export` runs every step, in this order:

1. the deployment form of a GhostNetV3 (``ghostnet_keras.reparameterize``);
2. the exact graph rewrites of :func:`tflite.optimize.export_graph` (``optimize``);
3. the conversion (:func:`tflite.converter.convert_variants`: float32, float16, dynamic-range
   or int8, a batch-1 input of the chosen type);
4. the flatbuffer rewrites that let XNNPACK run every op
   (:func:`tflite.flatbuffer.finish_flatbuffer`, with ``optimize``);
5. last, the LiteRT model metadata (:func:`tflite.metadata.add_metadata`): the model's name,
   description, version and license, the RGB input with its normalisation, the class names.
   It comes last because the flatbuffer rewrites drop the labels file appended to the model.

Its settings are one :class:`ExportOptions`, declared once: ``python -m tflite.convert``
derives its flags from it (:func:`add_flags`, :func:`options_from_args`), QAT
(:func:`tflite.qat.qat_int8`) ends with :func:`finish` (steps 4 and 5 on its own
conversion) and the benchmark (:func:`tflite.benchmark.convert_for_benchmark`) calls
:func:`export`.

```python
from tflite import export

options = export.ExportOptions(quantize="int8", io="uint8", labels=("cat", "dog"))
flatbuffer = export.export(model, options, representative_images=images)
```

Where the class names come from (the first that applies): ``labels``; the ImageNet class
names for a 1000-class model; none: the file still carries metadata (MediaPipe Tasks then
gives class indices without names). docs/deployment.md shows the clients that read them.
"""

import dataclasses
import json
import os
import reprlib
import warnings

from tflite import converter, metadata
from tflite import flatbuffer as fb

# The license of the package's code, written into every file unless another is given.
LICENSE = "Apache-2.0"
IMAGENET_CLASSES = 1000
INT8_INPUT_NOTE = (
    "MediaPipe Tasks cannot load a file with an int8 input (it takes uint8 or float32): "
    "use --io=uint8 or --io=float for MediaPipe"
)


def _field(default, help, flag=True, **extra):
    return dataclasses.field(default=default, metadata=dict(help=help, flag=flag, **extra))


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Every setting of an export; each field is a flag of ``python -m tflite.convert``.

    Attributes:
        quantize: ``"none"`` (float32), ``"float16"``, ``"dynamic"`` or ``"int8"``.
        io: the input type (and, for int8, the output type): ``"float"``, ``"uint8"`` (the
            raw 0-255 image) or ``"int8"`` (the pixel minus 128; int8 only, MediaPipe Tasks
            cannot load it).
        num_calibration: the int8 calibration images used.
        optimize: the exact graph and flatbuffer rewrites (faster in LiteRT, same function).
        reparameterize: a GhostNetV3 in its deployment form.
        metadata: the LiteRT model metadata. ``None`` (the default): written, except for an
            int8 input (left out with a warning); ``True``: written, an int8 input is an
            error; ``False``: left out.
        labels: the class names in output order (default: the ImageNet names of a
            1000-class model, else none).
        name, description, license, author: the model's information in the metadata
            (defaults: the Keras model's name, a description of the file, Apache-2.0, none).
    """

    quantize: str = _field(
        "none", "none | float16 | dynamic | int8", choices=converter.QUANTIZE_CHOICES
    )
    io: str = _field(
        "float", "input (and int8 output) type: float | uint8 | int8", choices=converter.IO_CHOICES
    )
    num_calibration: int = _field(200, "int8 calibration images")
    optimize: bool = _field(
        True, "the exact graph rewrites of tflite.optimize (--nooptimize: none)"
    )
    reparameterize: bool = _field(
        True, "a GhostNetV3 in its deployment form (--noreparameterize: training form)"
    )
    metadata: bool | None = _field(
        None, "LiteRT model metadata for MediaPipe Tasks (default: yes, but not for --io=int8)"
    )
    labels: tuple | None = _field(None, "class names, one per line, in output order", flag=False)
    name: str | None = _field(
        None, "model name in the metadata (default: the Keras model's)", flag=False
    )
    description: str | None = _field(None, "description in the metadata", flag=False)
    license: str | None = _field(None, f"license in the metadata (default {LICENSE})", flag=False)
    author: str | None = _field(None, "author in the metadata", flag=False)

    def __post_init__(self):
        converter.check_choice("quantize", self.quantize, converter.QUANTIZE_CHOICES)
        converter.check_choice("io", self.io, converter.IO_CHOICES)
        if self.io == "int8" and self.quantize != "int8":
            raise ValueError(
                "`io='int8'` needs full-integer quantization (`quantize='int8'`); use 'uint8' "
                f"for a raw image input of a float model. Received: io={self.io!r}"
            )
        n = self.num_calibration
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(
                f"`num_calibration` must be a positive integer. Received: num_calibration={n!r}"
            )
        if self.metadata not in (None, True, False):
            raise ValueError(
                f"`metadata` must be None, True or False. Received: metadata={self.metadata!r}"
            )
        if self.labels is not None:
            labels = self.labels
            if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
                raise ValueError(
                    "`labels` must be a list of class names, one per output class. "
                    f"Received: labels={reprlib.repr(labels)}"
                )
            object.__setattr__(self, "labels", tuple(labels))
            if self.metadata is False:
                raise ValueError(
                    "`labels` are written in the metadata, which metadata=False leaves out. "
                    f"Received: metadata=False, labels={reprlib.repr(list(labels))}"
                )
        if self.io == "int8" and (self.metadata or self.labels is not None):
            asked = (
                "metadata=True" if self.metadata else f"labels={reprlib.repr(list(self.labels))}"
            )
            raise ValueError(
                f"The metadata is for MediaPipe Tasks, which cannot load an int8 input: use "
                f"io='uint8' or io='float', or leave the metadata out. Received: io='int8', {asked}"
            )

    @property
    def with_metadata(self):
        """Whether the file gets metadata (``metadata=None``: yes unless the input is int8)."""
        return self.io != "int8" if self.metadata is None else self.metadata


def read_labels(path):
    """The class names of a labels file: one per line, UTF-8, in output order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a folder" if os.path.isdir(path) else "does not exist"
        raise ValueError(f"The labels file {what}. Received: labels={path!r}")
    from ghostnet_keras import labels

    return tuple(labels.read_labels_file(path))


def imagenet_labels():
    """The 1000 ImageNet-1k class names, in class-index order."""
    import ghostnet_keras.imagenet as imagenet

    with open(imagenet._CLASSES_FILE) as f:
        return tuple(name for _, name in json.load(f))


def _classes(model):
    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2:
        return None  # not a classifier's (batch, classes) output
    return shape[-1]


def resolve_labels(options, classes):
    """The class names of the file: ``options.labels`` (checked against ``classes``), the
    ImageNet names of a 1000-class model, or None."""
    if options.labels is not None:
        metadata.check_labels(list(options.labels), classes)
        return list(options.labels)
    if classes == IMAGENET_CLASSES:
        return list(imagenet_labels())
    return None


def _describe(classes, image_shape, options):
    import ghostnet_keras

    kind = {"none": "float32", "float16": "float16 weights", "dynamic": "dynamic-range int8"}
    height, width = image_shape[:2]
    pixels = {"float": "float32", "uint8": "uint8", "int8": "int8"}[options.io]
    return (
        f"An image classifier of {classes} classes ({kind.get(options.quantize, 'int8')}), "
        f"taking a {width}x{height} RGB image as {pixels} 0-255 pixels (the normalisation is "
        f"in the graph). Made with ghostnet-keras {ghostnet_keras.__version__}."
    )


def finish(flatbuffer, options, *, name, log=None):
    """The end of the chain on a converted ``flatbuffer``: the XNNPACK flatbuffer rewrites
    (with ``options.optimize``), then the metadata (see :class:`ExportOptions`).

    Args:
        flatbuffer: the converter's `.tflite` bytes.
        options: an :class:`ExportOptions`.
        name: the model's name, unless ``options.name`` gives one.
        log: ``callable(str)`` for the one-line notes (no labels, no metadata for an int8
            input); default ``warnings.warn``.
    """
    import ghostnet_keras

    log = log or (lambda line: warnings.warn(line, stacklevel=3))
    if options.optimize:
        flatbuffer = fb.finish_flatbuffer(flatbuffer)
    if not options.with_metadata:
        if options.metadata is None:  # the default, for an int8 input
            log(f"WARNING: no metadata written: {INT8_INPUT_NOTE}")
        return flatbuffer
    graph = fb.read(flatbuffer).subgraphs[0]
    image_shape = [int(d) for d in graph.tensors[graph.inputs[0]].shape[1:]]
    scores_shape = [int(d) for d in graph.tensors[graph.outputs[0]].shape]
    classes = scores_shape[-1]
    labels = resolve_labels(options, classes)
    if labels is None:
        log(
            f"Note: no class names for the {classes} classes: MediaPipe Tasks will give class "
            "indices only (give --labels=FILE, one name per line)"
        )
    return metadata.add_metadata(
        flatbuffer,
        labels=labels,
        name=options.name or name,
        description=options.description or _describe(classes, image_shape, options),
        version=ghostnet_keras.__version__,
        author=options.author,
        license=options.license or LICENSE,
    )


def check_model(model, options):
    """Checks, before converting, what the metadata needs of ``model``: a classifier output
    whose class count is that of ``options.labels``."""
    if not options.with_metadata:
        return
    classes = _classes(model)
    if classes is None:
        raise ValueError(
            "The metadata is for image classifiers with one (batch, classes) output; leave it "
            f"out (metadata=False) for this model. Received: output shape={model.output_shape}"
        )
    if options.labels is not None:
        metadata.check_labels(list(options.labels), classes)


def export_variants(
    model,
    variants,
    *,
    representative_images=None,
    image_size=None,
    log=None,
    rewrites=None,
    float_softmax=True,
):
    """:func:`export` for several :class:`ExportOptions` of one model: the graph rewrites
    run once, and the variants that take the same input share one SavedModel export.

    ``rewrites`` (default ``tflite.optimize.DEFAULT_REWRITES``) and ``float_softmax=False``
    are for measuring the rewrites (``benchmarks/``): which ``export_graph`` rewrites to
    apply, and whether to skip the flatbuffer rewrite of a quantized final softmax.

    Returns:
        A list of flatbuffers (``bytes``), one per variant, in order.
    """
    import ghostnet_keras

    variants = [ExportOptions() if v is None else v for v in variants]
    if any(not isinstance(v, ExportOptions) for v in variants):
        raise ValueError(
            f"`variants` must be ExportOptions. Received: {[type(v).__name__ for v in variants]}"
        )
    for options in variants:
        check_model(model, options)
    if any(v.reparameterize for v in variants):
        model = ghostnet_keras.reparameterize(model)
    groups = {}
    for index, options in enumerate(variants):
        groups.setdefault(options.optimize, []).append(index)
    results = [None] * len(variants)
    log = log or (lambda line: warnings.warn(line, stacklevel=2))
    for optimize, indices in groups.items():
        graph = model
        if optimize:
            from tflite import optimize as opt

            shape = converter.model_image_shape(model, image_size)
            rewrites = opt.DEFAULT_REWRITES if rewrites is None else rewrites
            try:
                graph = opt.export_graph(model, shape, rewrites=rewrites)
            except ValueError as err:  # e.g. a nested model: converted as it is
                log(f"WARNING: graph rewrites skipped ({err})")
                optimize = False
        files = converter.convert_variants(
            graph,
            [
                dict(
                    quantize=variants[i].quantize,
                    io=variants[i].io,
                    representative_images=representative_images
                    if variants[i].quantize == "int8"
                    else None,
                    num_calibration=variants[i].num_calibration,
                )
                for i in indices
            ],
            image_size=image_size,
            reparameterize=False,
        )
        for i, flatbuffer in zip(indices, files, strict=True):
            options = variants[i]
            if not optimize:
                options = dataclasses.replace(options, optimize=False)
            elif not float_softmax:
                flatbuffer = fb.float_depthwise(flatbuffer)
                options = dataclasses.replace(options, optimize=False)
            results[i] = finish(flatbuffer, options, name=model.name, log=log)
    return results


def export(model, options=None, *, representative_images=None, image_size=None, log=None):
    """Converts a Keras classifier to the `.tflite` file that ships: the whole chain of the
    module doc with one :class:`ExportOptions`.

    Args:
        model: a Keras model with one image input; registry models take 0-255 RGB.
        options: an :class:`ExportOptions` (default: float32, float input, metadata).
        representative_images: int8 calibration images, as for
            :func:`tflite.converter.convert_model`: real images, float32 0-255.
        image_size: the input size, only for a model built without a fixed one.
        log: ``callable(str)`` for one-line notes; default ``warnings.warn``.

    Returns:
        The `.tflite` file as ``bytes``.
    """
    return export_variants(
        model,
        [options],
        representative_images=representative_images,
        image_size=image_size,
        log=log,
    )[0]


def add_flags(parser):
    """Adds a flag for each :class:`ExportOptions` field that has one (booleans as
    ``--NAME``/``--noNAME``), and ``--labels=FILE``, to an ``argparse`` parser."""
    for field in dataclasses.fields(ExportOptions):
        info = field.metadata
        if not info["flag"]:
            continue
        if field.type in (bool, "bool", "bool | None", bool | None):
            parser.add_argument(
                f"--{field.name}", dest=field.name, action="store_true", default=field.default
            )
            parser.add_argument(
                f"--no{field.name}", dest=field.name, action="store_false", help=info["help"]
            )
        else:
            kind = int if field.type in (int, "int") else str
            help = f"{info['help']} (default {field.default})"
            parser.add_argument(f"--{field.name}", type=kind, default=field.default, help=help)
    parser.add_argument(
        "--labels",
        default=None,
        help="a labels file: one class name per line, in output order (default: the "
        "ImageNet names for 1000 classes, or labels.txt beside a .keras file)",
    )


def options_from_args(args, labels=None):
    """The :class:`ExportOptions` of parsed :func:`add_flags` arguments; ``labels`` are the
    class names to use when ``--labels`` is not given (e.g. those stored with the model)."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(ExportOptions)
        if f.metadata["flag"]
    }
    if args.labels is not None:
        labels = read_labels(args.labels)
    elif not (values["metadata"] is not False and values["io"] != "int8"):
        labels = None  # stored labels only where the metadata is written anyway
    return ExportOptions(**values, labels=labels)
