"""The QAT subprocess of :mod:`tflite.qat`: run as ``python -m tflite._qat_worker JOB_DIR``
with ``TF_USE_LEGACY_KERAS=1``. Never import this module in a Keras 3 process.

It reads ``graph.json``/``weights.npz`` (written by :func:`tflite.qat.export_graph`) and
``job.json``, rebuilds the graph on tf_keras, and either predicts with it (``"translate"``)
or runs quantization-aware training and the int8 conversion (``"qat"``). Progress goes to
stdout; an error is written to ``error.json`` and the exit code is 2.
"""

import json
import math
import os
import pathlib
import sys
import time
import traceback

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from ghostnet_keras import keras_graph  # noqa: E402
from tflite import flatbuffer as fb  # noqa: E402

L = tf_keras.layers


_START = time.monotonic()


def log(message):
    print(f"{message} [{time.monotonic() - _START:.0f} s]", flush=True)


class ChannelSlice(L.Layer):
    """tf_keras twin of ``ghostnet_keras.blocks.ChannelSlice``."""

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = int(stop)

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([*input_shape[:-1], self.stop - self.start])

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


class BoundedReLU(L.Layer):
    """``min(relu(x), max_value)`` after a linear conv: the SE gate's clip to [0, 1].

    The same function as ``ReLU(max_value=...)``; its own class so that tfmot's
    "conv + ReLU" transform leaves the conv's output quantizer alone. In the QAT model
    (``clipped_input=True``) it is the identity: the conv's output fake-quantization over
    ``[0, max_value]`` clips already (same values, same gradient), and TFLite then feeds
    the conv's int8 output straight to the multiply."""

    def __init__(self, max_value, clipped_input=False, **kwargs):
        super().__init__(**kwargs)
        self.max_value = float(max_value)
        self.clipped_input = bool(clipped_input)

    def call(self, inputs):
        if self.clipped_input:
            return tf.identity(inputs)
        return tf.minimum(tf.nn.relu(inputs), self.max_value)

    def get_config(self):
        config = super().get_config()
        return {**config, "max_value": self.max_value, "clipped_input": self.clipped_input}


# ---------------------------------------------------------------------------
# The graph: exact rewrites for quantization, then the tf_keras model.
# ---------------------------------------------------------------------------


def _consumers(graph):
    consumers = {}
    for layer in graph["layers"]:
        for _, tensors in layer["nodes"]:
            for source, _, _ in tensors:
                consumers.setdefault(source, []).append(layer["name"])
    return consumers


def _rename_input(graph, old, new):
    for layer in graph["layers"]:
        for _, tensors in layer["nodes"]:
            for t in tensors:
                if t[0] == old:
                    t[0] = new
    if graph["output"][0] == old:
        graph["output"][0] = new


def fold_for_quantization(graph, weights):
    """Exact rewrites that give every quantized tensor one TFLite op:

    - a ``Normalization`` of a 4D channels-last tensor becomes a 1x1 ``DepthwiseConv2D``
      with kernel ``1 / std`` and bias ``-mean / std`` (one op, int8 per-channel weights);
    - a ``Rescaling`` whose input is a linear ``Conv2D``/``DepthwiseConv2D``/``Dense`` used
      only by it (the SE gate's ``x / 6 + 0.5``) is folded into that layer's kernel and bias;
    - a ``ReLU(max_value=m)`` (``m`` not 6) right after such a layer becomes a
      `BoundedReLU`: that layer's output is then quantized over exactly ``[0, m]``, which
      clips as the ReLU does (the SE gate: ``[0, 1]`` with 255 steps).
    """
    by_name = {layer["name"]: layer for layer in graph["layers"]}
    consumers = _consumers(graph)
    for layer in list(graph["layers"]):
        args = layer["args"]
        if layer["type"] == "Normalization" and args["axis"] in ([-1], -1, [3], 3):
            if layer["nodes"][0][1][0][0] == graph["input"][0]:
                graph["raw_image_input"] = True
            mean = np.asarray(args["mean"], "float64")
            std = np.maximum(np.sqrt(np.asarray(args["variance"], "float64")), 1e-7)
            weights[f"{layer['name']}/0"] = (1.0 / std).reshape(1, 1, -1, 1).astype("float32")
            weights[f"{layer['name']}/1"] = (-mean / std).astype("float32")
            layer["type"] = "DepthwiseConv2D"
            layer["args"] = {
                "kernel_size": [1, 1],
                "strides": [1, 1],
                "padding": "valid",
                "depth_multiplier": 1,
                "dilation_rate": [1, 1],
                "activation": "linear",
                "use_bias": True,
            }
        elif layer["type"] == "Rescaling" and len(layer["nodes"]) == 1:
            source = by_name[layer["nodes"][0][1][0][0]]
            if (
                source["type"] not in ("Conv2D", "DepthwiseConv2D", "Dense")
                or source["args"]["activation"] != "linear"
                or len(source["nodes"]) != 1
                or consumers.get(source["name"]) != [layer["name"]]
            ):
                continue
            kernel = weights[f"{source['name']}/0"]
            if source["args"]["use_bias"]:
                bias = weights[f"{source['name']}/1"]
            elif source["type"] == "DepthwiseConv2D":
                bias = np.zeros(kernel.shape[-2] * kernel.shape[-1], "float32")
            else:
                bias = np.zeros(kernel.shape[-1], "float32")
            scale, offset = args["scale"], args["offset"]
            weights[f"{source['name']}/0"] = (kernel * scale).astype("float32")
            weights[f"{source['name']}/1"] = (bias * scale + offset).astype("float32")
            source["args"]["use_bias"] = True
            graph["layers"].remove(layer)
            _rename_input(graph, layer["name"], source["name"])
            consumers = _consumers(graph)
    for layer in graph["layers"]:
        args = layer["args"]
        if (
            layer["type"] == "ReLU"
            and args["max_value"] not in (None, 6)
            and not args["negative_slope"]
            and not args["threshold"]
            and len(layer["nodes"]) == 1
        ):
            source = by_name[layer["nodes"][0][1][0][0]]
            if (
                source["type"] in ("Conv2D", "DepthwiseConv2D", "Dense")
                and source["args"]["activation"] == "linear"
                and consumers.get(source["name"]) == [layer["name"]]
            ):
                layer["type"] = "BoundedReLU"
                layer["args"] = {"max_value": float(args["max_value"])}
    return graph, weights


def _make_layer(kind, name, args):
    args = dict(args)
    if kind == "ChannelSlice":
        return ChannelSlice(name=name, **args)
    if kind == "BoundedReLU":
        return BoundedReLU(name=name, **args)
    if kind == "Normalization":
        return L.Normalization(
            axis=args["axis"], mean=args["mean"], variance=args["variance"], name=name
        )
    if kind == "Rescaling":
        return L.Rescaling(args["scale"], offset=args["offset"], name=name)
    if kind == "ZeroPadding2D":
        return L.ZeroPadding2D(tuple(tuple(p) for p in args["padding"]), name=name)
    cls = getattr(L, kind, None)
    if cls is None:
        raise ValueError(f"tf_keras has no layer {kind} (layer {name!r}). Received: type={kind}")
    return cls(name=name, **args)


def build_model(graph, weights):
    """The tf_keras Functional model of ``graph`` with ``weights`` set."""
    tensors = {}
    made = []
    for layer in graph["layers"]:
        name, kind = layer["name"], layer["type"]
        if kind == "InputLayer":
            args = layer["args"]
            tensors[(name, 0, 0)] = tf_keras.Input(
                shape=args["shape"], dtype=args["dtype"], name=name
            )
            continue
        instance = _make_layer(kind, name, layer["args"])
        for node_index, (is_list, inbound) in enumerate(layer["nodes"]):
            inputs = [tensors[tuple(t)] for t in inbound]
            out = instance(inputs if is_list else inputs[0])
            tensors[(name, node_index, 0)] = out
        made.append(instance)
    model = tf_keras.Model(
        tensors[tuple(graph["input"])], tensors[tuple(graph["output"])], name=graph["name"]
    )
    for instance in made:
        count = len(instance.get_weights())
        if count:
            instance.set_weights([weights[f"{instance.name}/{i}"] for i in range(count)])
    return model


# ---------------------------------------------------------------------------
# Quantization.
# ---------------------------------------------------------------------------


class _RangeDecay:
    """Makes the EMA decay of tfmot's moving-average activation ranges a variable.

    tfmot starts every activation range at [-6, 6] and moves it by 0.1% a step
    (decay 0.999): a short fine-tuning would keep ranges far from the real ones (the
    SE gate's is [0, 1]). :func:`calibrate` first sets them to the mean of the per-batch
    min/max over real batches (decay ``k / (k + 1)`` at batch ``k``), then restores 0.999.
    """

    def __init__(self):
        from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

        self.decay = tf.Variable(0.999, trainable=False, dtype=tf.float32)
        original = quant_ops.MovingAvgQuantize

        def moving_average_quantize(*args, **kwargs):
            kwargs["ema_decay"] = self.decay
            return original(*args, **kwargs)

        quant_ops.MovingAvgQuantize = moving_average_quantize


def calibrate(qat_model, data, batches, range_decay):
    """Sets every activation range from ``batches`` real batches (see :class:`_RangeDecay`)."""

    @tf.function
    def step(x):
        qat_model(x, training=True)

    count = 0
    for count, (x, _) in enumerate(data.take(batches)):
        range_decay.decay.assign(count / (count + 1))
        step(x)
    range_decay.decay.assign(0.999)
    log(f"QAT: activation ranges calibrated on {count + 1} batches")


def _weights_quantizer_classes():
    """``(conv, depthwise)`` weight quantizers: tfmot's per-channel conv kernel quantizer, and
    one for depthwise kernels with one scale per output channel (``in_channels *
    depth_multiplier``, as TFLite does)."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantizers,
    )

    conv_quantizer = default_8bit_quantizers.Default8BitConvWeightsQuantizer

    class DepthwiseWeightsQuantizer(conv_quantizer):
        def build(self, tensor_shape, name, layer):
            channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
            return {
                "min_var": layer.add_weight(
                    name + "_min",
                    shape=(channels,),
                    initializer=tf_keras.initializers.Constant(-6.0),
                    trainable=False,
                ),
                "max_var": layer.add_weight(
                    name + "_max",
                    shape=(channels,),
                    initializer=tf_keras.initializers.Constant(6.0),
                    trainable=False,
                ),
            }

        def __call__(self, inputs, training, weights, **kwargs):
            shape = tf.shape(inputs)
            flat = tf.reshape(inputs, [shape[0], shape[1], 1, shape[2] * shape[3]])
            out = super().__call__(flat, training, weights, **kwargs)
            return tf.reshape(out, shape)

        def get_config(self):
            return {}

    return conv_quantizer, DepthwiseWeightsQuantizer


def _kernel_and_quantizer(layer, q, conv_quantizer, depthwise_quantizer):
    """``(kernel attribute, its quantizer)`` of a Conv2D, DepthwiseConv2D or Dense layer."""
    if isinstance(layer, L.DepthwiseConv2D):
        return "depthwise_kernel", depthwise_quantizer()
    if isinstance(layer, L.Conv2D):
        return "kernel", conv_quantizer()
    quantizer = q.quantizers.LastValueQuantizer(
        num_bits=8, per_axis=False, symmetric=True, narrow_range=True
    )
    return "kernel", quantizer


def _output_quantizers(output, q):
    """The output quantizers of a weighted layer: none, moving-average, or a fixed range."""
    if output == "none":
        return []
    if output == "moving":
        return [q.quantizers.MovingAverageQuantizer(8, False, False, False)]
    low, high = output
    return [q.quantizers.FixedQuantizer(8, low, high, narrow_range=False)]


def _weights_config_class():
    """``WeightsQuantizeConfig(output)``: TFLite's int8 weight quantization of a Conv2D,
    DepthwiseConv2D or Dense layer, and its output quantized ``"none"`` (a BN or ReLU
    follows and quantizes), ``"moving"`` (moving-average range) or over a fixed
    ``(low, high)`` range.

    Unlike tfmot's default scheme it quantizes depthwise kernels per output channel
    (``in_channels * depth_multiplier`` scales, as TFLite does; tfmot uses one scale per
    depth-multiplier index, so one for the whole kernel at multiplier 1), and it keeps the
    weight quantization of a conv or dense layer followed by a ReLU (tfmot drops it there).
    """
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras
    conv_quantizer, depthwise_quantizer = _weights_quantizer_classes()

    class WeightsQuantizeConfig(q.QuantizeConfig):
        def __init__(self, output="moving"):
            self.output = list(output) if isinstance(output, (list, tuple)) else output

        def _weights(self, layer):
            return _kernel_and_quantizer(layer, q, conv_quantizer, depthwise_quantizer)

        def get_weights_and_quantizers(self, layer):
            name, quantizer = self._weights(layer)
            return [(getattr(layer, name), quantizer)]

        def set_quantize_weights(self, layer, quantize_weights):
            setattr(layer, self._weights(layer)[0], quantize_weights[0])

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return _output_quantizers(self.output, q)

        def get_config(self):
            return {"output": self.output}

    return WeightsQuantizeConfig


def _consumer_layers(model):
    consumers = {}
    for layer in model.layers:
        for node in keras_graph.inbound_nodes(layer):
            inbound = node.inbound_layers
            for source in inbound if isinstance(inbound, list) else [inbound]:
                consumers.setdefault(source.name, []).append(layer)
    return consumers


def _plain_relu(layer):
    return (
        isinstance(layer, L.ReLU)
        and layer.max_value in (None, 6)
        and not layer.negative_slope
        and not layer.threshold
    )


def _patch_tfmot_transforms(image_input):
    """Patches tfmot's default 8-bit transforms for TFLite: the inputs of a ``Concatenate``
    keep their output quantizers, a customised conv before a ReLU keeps its config, and
    with ``image_input`` the model input is quantized over exactly [0, 255]."""
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_transforms as transforms,
    )

    q = tfmot.quantization.keras

    transforms.ConcatTransform._disable_output_quantize = lambda self, config: None
    relu_replacement = transforms.LayerReLUQuantize.replacement

    def keep_custom(self, match_layer):  # tfmot would make a customised conv a no-op
        if match_layer.input_layers[0].metadata.get("quantize_config") is not None:
            return match_layer
        return relu_replacement(self, match_layer)

    transforms.LayerReLUQuantize.replacement = keep_custom
    if image_input:
        # Raw 0-255 pixels: quantize the input over exactly [0, 255] (scale 1), so that a
        # uint8 input takes the pixel values themselves.
        def fixed_input(self, match_layer):
            from tensorflow_model_optimization.python.core.quantization.keras import (
                quantize_layer,
            )
            from tensorflow_model_optimization.python.core.quantization.keras import (
                utils as quantize_utils,
            )

            layer = quantize_layer.QuantizeLayer(
                q.quantizers.FixedQuantizer(8, 0.0, 255.0, narrow_range=False)
            )
            config = quantize_utils.serialize_layer(layer, use_legacy_format=True)
            config["name"] = layer.name
            return transforms.LayerNode(config, input_layers=[match_layer])

        transforms.InputLayerQuantize.replacement = fixed_input


def _quantize_config(layer, config, after, weights_config, output_config, noop_config):
    """The quantize config of one layer of the QAT model (see :func:`quantize`), given the
    layer ``after`` it (its only consumer, or None); None for tfmot's default."""
    if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)) and (
        config["activation"] == "linear"
    ):
        if isinstance(after, BoundedReLU):
            output = (0.0, after.max_value)
        elif isinstance(after, L.BatchNormalization) or _plain_relu(after):
            output = "none"
        else:
            output = "moving"
        return weights_config(output)
    if isinstance(layer, L.BatchNormalization):
        return noop_config() if _plain_relu(after) else output_config()
    if isinstance(layer, (L.Multiply, L.Rescaling, L.Normalization)):
        return output_config()
    if isinstance(layer, (ChannelSlice, BoundedReLU)):
        return noop_config()
    if isinstance(layer, L.ReLU) and not _plain_relu(layer):
        return output_config()
    return None


def quantize(model, image_input=False):
    """The QAT model: tfmot's default 8-bit scheme, plus explicit configs for what it
    rejects or gets wrong for TFLite (as Model Garden's quantized SE layer does, the
    gate and the multiply get quantized outputs, no weights):

    - Conv2D, DepthwiseConv2D, Dense: `_weights_config_class` (TFLite's per-channel
      weights), the output quantized unless a BatchNormalization or ReLU follows;
    - the conv before a `BoundedReLU` (the SE gate): its output over the fixed range
      ``[0, max_value]``, which does the clipping; the `BoundedReLU` becomes the identity;
    - BatchNormalization after a conv: the output quantized, unless a ReLU follows;
    - ``Multiply`` (SE scale), ``Rescaling`` (an unfolded one), ``Normalization``,
      ReLUs with another bound than 6: the output quantized with a moving-average range;
    - ``ChannelSlice``: nothing (a slice keeps its input's scale);
    - with ``image_input`` (the model normalises raw 0-255 pixels in its graph) the
      input is quantized over exactly [0, 255];
    - the inputs of a ``Concatenate`` keep their own output quantizers (tfmot drops them,
      but TFLite keeps those tensors int8 with their own scale, and the ghost module's
      primary features also feed the cheap depthwise conv).
    """
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs,
    )

    _patch_tfmot_transforms(image_input)
    q = tfmot.quantization.keras
    output_config = configs.Default8BitOutputQuantizeConfig
    noop_config = configs.NoOpQuantizeConfig
    weights_config = _weights_config_class()
    consumers = _consumer_layers(model)

    def only(layer):
        users = consumers.get(layer.name, [])
        return users[0] if len(users) == 1 else None

    def annotate(layer):
        config = layer.get_config()
        if isinstance(layer, BoundedReLU):
            config["clipped_input"] = True
        new = layer.__class__.from_config(config)
        if isinstance(layer, L.InputLayer):
            return new
        quantize_config = _quantize_config(
            layer, config, only(layer), weights_config, output_config, noop_config
        )
        if quantize_config is None:
            return q.quantize_annotate_layer(new)
        return q.quantize_annotate_layer(new, quantize_config)

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    scope = {
        "ChannelSlice": ChannelSlice,
        "BoundedReLU": BoundedReLU,
        "WeightsQuantizeConfig": weights_config,
        "Default8BitOutputQuantizeConfig": output_config,
        "NoOpQuantizeConfig": noop_config,
        "FixedQuantizer": q.quantizers.FixedQuantizer,
    }
    with q.quantize_scope(scope):
        return q.quantize_apply(annotated)


def convert(model, io):
    """Full-integer int8 TFLite of the QAT ``model``: batch 1, builtin int8 ops only.

    Every range comes from the fake-quant layers (so no representative data: with one, the
    converter would calibrate instead). Raises ``RuntimeError`` naming any op that would
    still compute in float."""
    shape = [1, *model.input_shape[1:]]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def serve(x):
        return model(x, training=False)

    # The converter saves its trackable object as a SavedModel first: a bare module holding
    # the variables, not the tf_keras model, whose save traces every layer again (for a
    # C-GhostNet-0.5 at 32x32 the conversion took 70 s with the model, 25 s with the module).
    variables = tf.Module()
    variables.variables_ = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], variables
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if io != "float":
        converter.inference_input_type = tf.uint8 if io == "uint8" else tf.int8
        converter.inference_output_type = tf.uint8 if io == "uint8" else tf.int8
    flatbuffer = converter.convert()
    float_ops = fb.float_ops(flatbuffer)
    if float_ops:
        raise RuntimeError(
            "The QAT model did not convert to full-integer int8: these ops compute in float: "
            f"{', '.join(sorted(set(float_ops)))}. Received: float ops={len(float_ops)}"
        )
    return flatbuffer


# ---------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------


def train_dataset(job, image_size):
    """``(dataset, batches per pass)`` of ``(float32 0-255 images, int labels)`` batches."""
    batch = job["batch_size"]
    if "train_arrays" in job:
        arrays = np.load(job["train_arrays"])
        x, y = arrays["x"].astype("float32"), arrays["y"]
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
        return data.batch(batch), math.ceil(len(x) / batch)
    from ghostnet_keras import data as data_lib

    if image_size[0] != image_size[1]:
        raise ValueError(f"QAT data needs a square image size. Received: image_size={image_size}")
    spec, data_dir = job["train_spec"], job.get("data_dir")
    info = data_lib.dataset_info(spec, data_dir=data_dir)
    data = data_lib.make_dataset(
        spec,
        "train",
        training=True,
        batch_size=batch,
        image_size=image_size[0],
        data_dir=data_dir,
        seed=0,
        one_hot=False,
        repeat=False,
    )
    log(f"QAT: {info.num_train_examples:,} training images of {info.num_classes} classes")
    return data, max(1, info.num_train_examples // batch)


def fine_tune(qat_model, job, data, batches):
    output_layer = qat_model.layers[-1]
    probabilities = "softmax" in json.dumps(output_layer.get_config())
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(job["learning_rate"]),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities),
        metrics=["accuracy"],
    )
    steps = job["steps_per_epoch"] or batches
    epochs = job["epochs"]

    class Progress(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(
                f"QAT epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.4f}, "
                f"accuracy {logs.get('accuracy', float('nan')):.4f}"
            )

    if epochs:
        log(f"QAT: fine-tuning for {epochs} epoch(s) of {steps or 'all'} batches")
        qat_model.fit(
            data.repeat() if steps else data,
            epochs=epochs,
            steps_per_epoch=steps,
            verbose=0,
            callbacks=[Progress()],
        )


def run(job_dir):
    job_dir = pathlib.Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    graph = json.loads((job_dir / "graph.json").read_text())
    weights = dict(np.load(job_dir / "weights.npz"))
    graph, weights = fold_for_quantization(graph, weights)
    model = build_model(graph, weights)
    log(f"QAT: rebuilt {model.name} on tf_keras ({model.count_params():,} parameters)")
    if job["mode"] == "translate":
        images = np.load(job["predict"])["x"].astype("float32")
        np.save(job["predictions_out"], model.predict(images, verbose=0))
        return
    tf_keras.utils.set_random_seed(0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.trainable = False  # keep the trained statistics: fine-tuning on few batches
    range_decay = _RangeDecay()
    qat_model = quantize(model, image_input=graph.get("raw_image_input", False))
    size = job.get("image_size") or list(model.input_shape[1:3])
    size = [size, size] if isinstance(size, int) else list(size)
    data, batches = train_dataset(job, size)
    calibrate(qat_model, data, job.get("calibration_batches", 8), range_decay)
    fine_tune(qat_model, job, data, batches)
    if "predict" in job:
        images = np.load(job["predict"])["x"].astype("float32")
        np.save(job["predictions_out"], qat_model.predict(images, verbose=0))
    log("QAT: converting to a full-integer int8 TFLite model")
    tflite = convert(qat_model, job["io"])
    pathlib.Path(job["tflite_out"]).write_bytes(tflite)


def main(argv):
    job_dir = argv[1]
    try:
        run(job_dir)
    except Exception as error:  # noqa: BLE001 - reported to the parent as one message
        kind = "ValueError" if isinstance(error, ValueError) else "RuntimeError"
        message = str(error).strip().splitlines()
        message = message[-1] if message else type(error).__name__
        (pathlib.Path(job_dir) / "error.json").write_text(
            json.dumps({"type": kind, "message": f"QAT failed: {message}"})
        )
        traceback.print_exc()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
