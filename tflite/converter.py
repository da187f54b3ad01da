"""The conversion step: a Keras 3 model to a `.tflite` flatbuffer with TensorFlow's converter.

Float32, float16, dynamic-range or int8 (calibrated on real images), a fixed batch-1 input
(the LiteRT XNNPACK delegate refuses a dynamic batch dimension), TFLite builtin ops only.
Models with their preprocessing in the graph (``include_preprocessing=True``, the default of
every registry model) take RGB images with values in [0, 255]; ``io="uint8"`` makes that
input a raw ``uint8`` image.

This is one step of the export chain; :func:`tflite.export.export` runs them all (graph
rewrites, this conversion, the flatbuffer rewrites, the metadata), and ``python -m
tflite.convert`` is its command line.
"""

import re
import tempfile

import numpy as np

from ghostnet_keras import cli
from tflite import latency
from tflite.models import load_model, model_image_shape

__all__ = ["convert_model", "convert_variants", "iterate_images", "load_model", "model_image_shape"]

QUANTIZE_CHOICES = ("none", "float16", "dynamic", "int8")
IO_CHOICES = ("float", "uint8", "int8")


def _tf():
    import tensorflow as tf

    return tf


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )


def iterate_images(images, image_shape, limit):
    """Yields up to ``limit`` float32 images of ``image_shape`` from arrays, batches,
    ``(images, labels)`` pairs or a ``tf.data.Dataset`` of any of these."""
    count = 0
    tf = _tf()
    if isinstance(images, tf.data.Dataset):
        images = images.as_numpy_iterator()
    elif isinstance(images, np.ndarray) or hasattr(images, "numpy"):
        images = [np.asarray(images)]
    for item in images:
        if isinstance(item, (tuple, list)):
            item = item[0]
        item = np.asarray(item, dtype="float32")
        batch = item[None] if item.ndim == 3 else item
        if batch.ndim != 4 or tuple(batch.shape[1:]) != tuple(image_shape):
            raise ValueError(
                f"Calibration images must have the model's input shape {tuple(image_shape)}. "
                f"Received: image shape={tuple(item.shape)}"
            )
        for image in batch:
            if count >= limit:
                return
            count += 1
            yield image


def _select_ops_error(err):
    """The ValueError for a conversion that needs ops outside the TFLite builtins."""
    text = str(err)
    ops = set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text))
    ops |= set(re.findall(r"\b(tf\.\w+)\b(?=[^\n]*not supported)", text))
    for match in re.findall(r"(?:Flex|Select TF) ops: ([^\n.]+)", text):
        ops |= {op.strip() for op in match.split(",") if op.strip()}
    if not ops:
        return None
    return ValueError(
        "The model needs TensorFlow ops that TFLite has no builtin kernel for "
        f"(Select TF ops are not allowed in mobile exports): {', '.join(sorted(ops))}. "
        f"Received: ops={sorted(ops)}"
    )


def convert_model(
    model,
    *,
    quantize="none",
    io="float",
    representative_images=None,
    num_calibration=200,
    batch_size=1,
    image_size=None,
    reparameterize=True,
):
    """Converts a Keras 3 model to a TFLite flatbuffer with a fixed batch dimension.

    Args:
        model: a Keras model with one image input. Registry models (with the default
            ``include_preprocessing=True``) take float32 RGB values in [0, 255].
        quantize: ``"none"`` (float32), ``"float16"`` (float16 weights, float compute),
            ``"dynamic"`` (int8 weights, float activations) or ``"int8"`` (full-integer:
            int8 weights and activations, calibrated on ``representative_images``).
        io: the type of the input (and, with ``quantize="int8"``, of the output).
            ``"float"``: float32 as the Keras model. ``"uint8"``: the raw 0-255 image as
            ``uint8`` (quantization scale 1, zero point 0, so the model's in-graph
            normalisation acts on exactly the pixel values); with ``"int8"`` quantization the
            output is uint8 too (scale 1/256). ``"int8"``: the pixel minus 128 as ``int8``
            (``quantize="int8"`` only), output int8.
        representative_images: images for int8 calibration, float32 in [0, 255] of the
            model's input shape: an array ``(N, H, W, 3)``, an iterable of images or batches,
            or a ``tf.data.Dataset`` (``(images, labels)`` elements are fine). Use real images
            preprocessed as at evaluation time.
        num_calibration: how many of them to use.
        batch_size: the fixed batch size of the exported signature (1 for phones).
        image_size: the input size, only for a model built without a fixed one.
        reparameterize: export the deployment form of a GhostNetV3 training-form model
            (``ghostnet_keras.reparameterize``: the same outputs, fewer parameters and ops);
            other models are exported as they are.

    Returns:
        The `.tflite` flatbuffer as ``bytes``.
    """
    return convert_variants(
        model,
        [
            dict(
                quantize=quantize,
                io=io,
                representative_images=representative_images,
                num_calibration=num_calibration,
            )
        ],
        batch_size=batch_size,
        image_size=image_size,
        reparameterize=reparameterize,
    )[0]


def convert_variants(model, variants, *, batch_size=1, image_size=None, reparameterize=True):
    """:func:`convert_model` for several settings of one model, tracing and saving it once.

    Args:
        model: as for :func:`convert_model`.
        variants: a list of dicts of :func:`convert_model` arguments (``quantize``, ``io``,
            ``representative_images``, ``num_calibration``), one per `.tflite` to make.
        batch_size, image_size, reparameterize: as for :func:`convert_model`, the same for
            every variant.

    Returns:
        A list of flatbuffers (``bytes``), one per variant, in order. Each is the file
        :func:`convert_model` makes with the same arguments; the variants that take the same
        input (every one but a float model with ``io="uint8"``) share one SavedModel export.
    """
    variants = [_check_variant(**variant) for variant in variants]
    if reparameterize:
        import ghostnet_keras

        model = ghostnet_keras.reparameterize(model)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size=}")
    height, width, channels = model_image_shape(model, image_size)
    image_shape = (height, width, channels)
    calibrations = [_calibration(image_shape, **variant) for variant in variants]

    results = [None] * len(variants)
    by_input = {}
    for index, variant in enumerate(variants):
        raw = variant["io"] == "uint8" and variant["quantize"] != "int8"
        by_input.setdefault(raw, []).append(index)
    for raw, indices in by_input.items():
        with tempfile.TemporaryDirectory(prefix="ghostnet_tflite_") as saved:
            _export(model, [batch_size, *image_shape], raw, saved)
            for index in indices:
                variant = variants[index]
                results[index] = _convert_saved(
                    saved, variant["quantize"], variant["io"], calibrations[index], batch_size
                )
    return results


def _check_variant(quantize="none", io="float", representative_images=None, num_calibration=200):
    """Validates one variant's arguments; returns them as a dict."""
    check_choice("quantize", quantize, QUANTIZE_CHOICES)
    check_choice("io", io, IO_CHOICES)
    if io == "int8" and quantize != "int8":
        raise ValueError(
            "`io='int8'` needs full-integer quantization (`quantize='int8'`); use 'uint8' "
            f"for a raw image input of a float model. Received: io={io!r}"
        )
    if quantize == "int8":
        if representative_images is None:
            raise ValueError(
                "Full-integer quantization needs `representative_images` for calibration. "
                "Received: representative_images=None"
            )
        if not isinstance(num_calibration, int) or num_calibration < 1:
            raise ValueError(
                f"`num_calibration` must be a positive integer. Received: {num_calibration=}"
            )
    return dict(
        quantize=quantize,
        io=io,
        representative_images=representative_images,
        num_calibration=num_calibration,
    )


def _calibration(image_shape, quantize, io, representative_images, num_calibration):
    """The calibration images of an int8 variant as one array (None for the others)."""
    if quantize != "int8":
        return None
    calibration = list(iterate_images(representative_images, image_shape, num_calibration))
    if not calibration:
        raise ValueError(
            "`representative_images` yielded no image. Received: representative_images="
            f"{type(representative_images).__name__}"
        )
    calibration = np.stack(calibration)
    if io != "float" and (calibration.min() < 0.0 or calibration.max() > 255.0):
        raise ValueError(
            f"`io={io!r}` takes raw 0-255 pixels, but the calibration images range over "
            f"[{calibration.min():g}, {calibration.max():g}]. Received: io={io!r}"
        )
    return calibration


def _export(model, spec_shape, raw, directory):
    """Writes ``model`` as a SavedModel with one batch-``spec_shape`` endpoint ``serve``:
    float32 images, or (``raw``) uint8 images cast to float in front of the float graph."""
    tf = _tf()
    import keras

    export = keras.export.ExportArchive()
    export.track(model)
    if raw:
        # A float model with a raw image input: a CAST in front of the float graph.
        def serve(images):
            return model(tf.cast(images, model.input.dtype), training=False)

        signature = tf.TensorSpec(spec_shape, tf.uint8, name="images")
    else:

        def serve(images):
            return model(images, training=False)

        signature = tf.TensorSpec(spec_shape, tf.float32, name="images")
    export.add_endpoint("serve", serve, input_signature=[signature])
    export.write_out(directory, verbose=False)


def _convert_saved(saved, quantize, io, calibration, batch_size):
    """Converts the SavedModel in ``saved`` with one variant's settings."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = _representative(
            calibration, batch_size, anchor=io != "float"
        )
        if io != "float":
            converter.inference_input_type = tf.uint8 if io == "uint8" else tf.int8
            converter.inference_output_type = converter.inference_input_type
    try:
        with cli.quiet_native():  # the MLIR quantizer prints its settings from C++
            flatbuffer = converter.convert()
    except Exception as err:  # ConverterError and friends: name the Select TF ops.
        select = _select_ops_error(err)
        if select is not None:
            raise select from err
        raise
    if io != "float" and quantize == "int8":
        _check_raw_input(flatbuffer, io)
    return flatbuffer


def _representative(calibration, batch_size, anchor):
    """The representative-dataset generator: batches of ``batch_size`` calibration images.

    With ``anchor``, the first image gets one pixel at 0 and one at 255 in every channel, so
    that the calibrated input range is exactly [0, 255]: a uint8 input then has scale 1 and
    zero point 0 (int8: zero point -128) and takes the raw pixel values.
    """
    images = calibration
    if anchor:
        images = calibration.copy()
        images[0, 0, 0, :] = 0.0
        images[0, 0, -1, :] = 255.0
    usable = max(batch_size, len(images) - len(images) % batch_size)
    if len(images) < batch_size:
        images = np.concatenate([images] * (-(-batch_size // len(images))))

    def generate():
        for start in range(0, usable, batch_size):
            yield [images[start : start + batch_size]]

    return generate


def _check_raw_input(flatbuffer, io):
    details = latency.load_interpreter(flatbuffer).get_input_details()[0]
    scale, zero_point = details["quantization"]
    expected = 0 if io == "uint8" else -128
    if not (abs(scale - 1.0) < 1e-6 and zero_point == expected):
        raise ValueError(
            "The quantized input does not take raw pixel values: its scale and zero point "
            f"are {scale}, {zero_point} instead of 1, {expected}; are the calibration images "
            f"in [0, 255]? Received: io={io!r}"
        )
