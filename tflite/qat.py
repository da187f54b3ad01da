"""Quantization-aware training (QAT) to a full-integer int8 ``.tflite``, kept out of this process.

tensorflow-model-optimization (tfmot) only quantizes ``tf_keras`` Functional models, and
importing it switches the whole process to legacy Keras (``TF_USE_LEGACY_KERAS=1``). So
:func:`qat_int8` never imports it here: it writes the Keras 3 model's graph (every layer's
type, arguments and inbound tensors, in topological order) and weights to a temporary
folder and runs :mod:`tflite._qat_worker` in a subprocess, which rebuilds the same
graph on ``tf_keras``, wraps it for QAT with explicit quantize configs for what the default
8-bit scheme does not cover (the squeeze-excite gate and multiply, ``ChannelSlice``, the
input normalisation), fine-tunes it and converts it. The caller's Keras is untouched.

Example:

```python
from tflite import qat

data = qat.qat_int8("ghostnet.keras", "folder:/data/train", epochs=2, output="ghostnet_qat.tflite")
```
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ERROR_FILE = "error.json"
# Activations that mean the same in Keras 3 and tf_keras.
ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "sigmoid", "tanh", "swish", "silu")
# Worker stderr lines that are TensorFlow start-up noise, not errors.
_STDERR_NOISE = ("cuda", "oneDNN", "cpu_feature_guard", "rebuild TensorFlow", "E0000", "W0000")


def _activation_name(layer, activation):
    import keras

    name = keras.activations.serialize(activation)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    if name not in ACTIVATIONS:
        raise ValueError(
            f"QAT cannot rebuild layer {layer.name!r} ({type(layer).__name__}) on tf_keras: "
            f"its activation must be one of {ACTIVATIONS}. Received: activation={name!r}"
        )
    return name


def _pair(value):
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


# Config entries that Keras 3 may hold as one int and tf_keras takes as a pair.
_PAIRS = ("kernel_size", "strides", "dilation_rate", "pool_size")


def _config_args(*keys):
    """A spec function copying ``keys`` of the layer's config (pairs as pairs, the
    activation by its name, ``groups`` 1 where absent)."""

    def spec(layer, config):
        args = {}
        for key in keys:
            if key == "activation":
                args[key] = _activation_name(layer, layer.activation)
            elif key == "groups":
                args[key] = config.get("groups", 1)
            else:
                args[key] = _pair(config[key]) if key in _PAIRS else config[key]
        return args

    return spec


def _normalization_args(layer, config):
    if config.get("invert"):
        raise ValueError(
            f"QAT cannot rebuild layer {layer.name!r}: an inverting Normalization. "
            "Received: invert=True"
        )
    mean = np.asarray(layer.mean, "float64").reshape(-1)
    variance = np.asarray(layer.variance, "float64").reshape(-1)
    return {"axis": config["axis"], "mean": mean.tolist(), "variance": variance.tolist()}


_CONV_KEYS = ("kernel_size", "strides", "padding")
_POOLING_KEYS = ("pool_size", "strides", "padding")
# The tf_keras constructor arguments of each layer type the worker rebuilds, from the Keras 3
# layer and its config.
_LAYER_ARGS = {
    "InputLayer": lambda layer, c: {
        "shape": list(c["batch_shape"][1:]),
        "dtype": c.get("dtype", "float32"),
    },
    "Conv2D": _config_args(
        "filters", *_CONV_KEYS, "dilation_rate", "groups", "activation", "use_bias"
    ),
    "DepthwiseConv2D": _config_args(
        *_CONV_KEYS, "depth_multiplier", "dilation_rate", "activation", "use_bias"
    ),
    "BatchNormalization": _config_args("axis", "momentum", "epsilon", "center", "scale"),
    "ReLU": _config_args("max_value", "negative_slope", "threshold"),
    "ZeroPadding2D": lambda layer, c: {"padding": [list(p) for p in c["padding"]]},
    "Concatenate": _config_args("axis"),
    "ChannelSlice": lambda layer, c: {"start": layer.start, "stop": layer.stop},
    "Rescaling": lambda layer, c: {"scale": float(c["scale"]), "offset": float(c["offset"])},
    "Multiply": _config_args(),
    "Add": _config_args(),
    "GlobalAveragePooling2D": _config_args("keepdims"),
    "GlobalMaxPooling2D": _config_args("keepdims"),
    "MaxPooling2D": _config_args(*_POOLING_KEYS),
    "AveragePooling2D": _config_args(*_POOLING_KEYS),
    "Dense": _config_args("units", "activation", "use_bias"),
    "Dropout": _config_args("rate"),
    "Normalization": _normalization_args,
    "Activation": _config_args("activation"),
    "Flatten": _config_args(),
    "Reshape": lambda layer, c: {"target_shape": list(c["target_shape"])},
}
# The layers the worker can rebuild on tf_keras.
SUPPORTED_LAYERS = tuple(_LAYER_ARGS)


def _layer_spec(layer):
    """The tf_keras constructor arguments of ``layer`` (a Keras 3 layer), by layer type."""
    kind = type(layer).__name__
    if kind not in _LAYER_ARGS:
        raise ValueError(
            f"QAT cannot rebuild layer {layer.name!r} of type {kind} on tf_keras; the layers "
            f"it can rebuild are {', '.join(SUPPORTED_LAYERS)}. Received: layer={layer.name}"
        )
    return _LAYER_ARGS[kind](layer, layer.get_config())


def _inbound(node):
    """``(is_list, [[layer, node, tensor], ...])`` of one serialized inbound node."""
    args = node["args"]
    if any(isinstance(v, dict) for v in node.get("kwargs", {}).values()):
        raise ValueError(
            f"tensor keyword inputs are not supported. Received: kwargs={node['kwargs']}"
        )
    first = args[0] if len(args) == 1 else args
    is_list = isinstance(first, list)
    tensors = first if is_list else [first]
    return is_list, [t["config"]["keras_history"] for t in tensors]


def export_graph(model, directory):
    """Writes ``model``'s graph (``graph.json``) and weights (``weights.npz``) to ``directory``
    in the form :mod:`tflite._qat_worker` rebuilds on tf_keras; raises ``ValueError`` naming
    the first layer it cannot rebuild."""
    import keras

    config = model.get_config() if isinstance(model, keras.Model) else None
    if not config or "layers" not in config or "input_layers" not in config:
        raise ValueError(
            "QAT needs a Keras Functional model (rebuild a Sequential or subclassed model as "
            f"keras.Model(inputs, outputs)). Received: model=<{type(model).__name__}>"
        )
    ends = {}
    for key in ("input_layers", "output_layers"):
        value = config[key]
        ends[key] = [value] if value and isinstance(value[0], str) else value
    if len(ends["input_layers"]) != 1 or len(ends["output_layers"]) != 1:
        raise ValueError(
            "QAT needs a model with one input and one output. "
            f"Received: inputs={len(ends['input_layers'])}, "
            f"outputs={len(ends['output_layers'])}"
        )
    layers, weights = [], {}
    for entry in config["layers"]:
        layer = model.get_layer(entry["name"])
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"QAT cannot rebuild the nested model {layer.name!r}: build the model as one "
                f"flat Functional graph. Received: layer={layer.name}"
            )
        spec = _layer_spec(layer)
        nodes = [_inbound(node) for node in entry["inbound_nodes"]]
        layers.append(
            {"name": layer.name, "type": type(layer).__name__, "args": spec, "nodes": nodes}
        )
        for i, value in enumerate(layer.get_weights()):
            weights[f"{layer.name}/{i}"] = value
    directory = pathlib.Path(directory)
    graph = {
        "name": model.name,
        "layers": layers,
        "input": ends["input_layers"][0],
        "output": ends["output_layers"][0],
    }
    (directory / "graph.json").write_text(json.dumps(graph))
    np.savez(directory / "weights.npz", **weights)


def _is_noise(line):
    return any(word in line for word in _STDERR_NOISE)


def _run_worker(job_dir, job, progress):
    """Runs the worker on ``job`` (a dict written to ``job_dir/job.json``), streaming its
    stdout to ``progress``; raises the worker's error as ``ValueError``/``RuntimeError``."""
    job_dir = pathlib.Path(job_dir)
    (job_dir / "job.json").write_text(json.dumps(job))
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    stderr_path = job_dir / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tflite._qat_worker", str(job_dir)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=root,
            text=True,
        )
        for line in process.stdout:
            line = line.rstrip()
            if line and progress and not _is_noise(line):
                progress(line)
        code = process.wait()
    if code == 0:
        return
    error_file = job_dir / ERROR_FILE
    if error_file.exists():
        error = json.loads(error_file.read_text())
        kind = ValueError if error["type"] == "ValueError" else RuntimeError
        raise kind(error["message"])
    lines = [
        line
        for line in stderr_path.read_text().splitlines()
        if line.strip() and not _is_noise(line)
    ]
    raise RuntimeError(
        f"The QAT worker failed (exit code {code}): " + (lines[-1] if lines else "no message")
    )


def _check_extra():
    """Raises ``MissingExtraError`` naming the ``qat`` extra if the worker cannot run. Only
    looked up: importing tfmot would switch this process to tf_keras."""
    from ghostnet_keras import extras

    for module in ("tensorflow_model_optimization", "tf_keras"):
        if importlib.util.find_spec(module) is None:
            raise extras.MissingExtraError(
                f"{module} is not installed; it is needed for quantization-aware training. "
                f"Install it with: {extras.install_hint('qat')}"
            )


def _load_model(model_or_path):
    import keras

    import ghostnet_keras  # noqa: F401  (registers ChannelSlice for loading)

    if isinstance(model_or_path, keras.Model):
        return model_or_path
    path = pathlib.Path(os.fspath(model_or_path))
    if path.suffix != ".keras" or not path.is_file():
        raise ValueError(
            "`model_or_path` must be a Keras model or an existing `.keras` file. "
            f"Received: model_or_path={os.fspath(model_or_path)!r}"
        )
    return keras.saving.load_model(path)


def _save_arrays(directory, name, x, y=None):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(
            f"`{name}` images must be a 4D array (count, height, width, channels). "
            f"Received: {name}.shape={x.shape}"
        )
    arrays = {"x": x}
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(
                f"`{name}` needs as many labels as images. "
                f"Received: {len(x)} images, {len(y)} labels"
            )
        arrays["y"] = y
    path = pathlib.Path(directory) / f"{name}.npz"
    np.savez(path, **arrays)
    return str(path)


def translate_predictions(model_or_path, images, *, progress=None):
    """The predictions on ``images`` of ``model`` rebuilt on tf_keras (in the worker), exactly
    the graph QAT starts from, before any quantization. For checking the translation."""
    _check_extra()
    model = _load_model(model_or_path)
    with tempfile.TemporaryDirectory(prefix="ghostnet_qat_") as tmp:
        export_graph(model, tmp)
        job = {
            "mode": "translate",
            "predict": _save_arrays(tmp, "predict", images),
            "predictions_out": os.path.join(tmp, "predictions.npy"),
        }
        _run_worker(tmp, job, progress)
        return np.load(job["predictions_out"])


def qat_int8(
    model_or_path,
    train_data,
    *,
    epochs=1,
    steps_per_epoch=None,
    batch_size=32,
    learning_rate=1e-4,
    image_size=None,
    options=None,
    data_dir=None,
    output=None,
    predict_images=None,
    progress=print,
    log=None,
):
    """Quantization-aware fine-tuning, then conversion to a full-integer int8 ``.tflite``.

    Args:
        model_or_path: a Keras 3 Functional model (one input, one output) or a `.keras` file,
            made of the layers in `SUPPORTED_LAYERS` (every C-GhostNet is).
        train_data: `(images, labels)` numpy arrays (0-255 RGB images as the model takes
            them, integer labels) or a dataset spec for `ghostnet_keras.data.make_dataset`
            (`"folder:PATH"` or a TFDS name).
        epochs: fine-tuning epochs. The activation ranges are first calibrated on 8 batches;
            0 converts right after that (post-training quantization through tfmot).
        steps_per_epoch: batches per epoch (default: the whole data).
        batch_size: batch size of the fine-tuning.
        learning_rate: Adam learning rate of the fine-tuning (small: it starts trained).
        image_size: resize spec images to this size (default: the model's input size).
        options: the export settings, a `tflite.export.ExportOptions` with
            ``quantize="int8"`` (default: float32 input and output, metadata). Its ``io``:
            `"float"`, `"uint8"` or `"int8"` (quantized input and output tensors; uint8 takes
            raw 0-255 RGB when the model normalises in-graph). The worker's conversion ends
            as every export does (`tflite.export.finish`): the flatbuffer rewrites with
            ``optimize``, then the metadata.
        data_dir: TFDS data directory for a TFDS `train_data`.
        output: optional path to write the `.tflite` to.
        predict_images: optional images; the QAT (fake-quant tf_keras) model's predictions on
            them are returned too, for comparison with the `.tflite`.
        progress: callable taking one line of progress text, or `None`.
        log: callable taking the export's one-line notes (default ``warnings.warn``).

    Returns:
        The `.tflite` bytes, or `(bytes, predictions)` when `predict_images` is given.
    """
    from tflite import export

    options = export.ExportOptions(quantize="int8") if options is None else options
    if not isinstance(options, export.ExportOptions) or options.quantize != "int8":
        raise ValueError(
            "`options` must be tflite.export.ExportOptions with quantize='int8'. "
            f"Received: options={options!r}"
        )
    for name, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    if steps_per_epoch is not None and (
        not isinstance(steps_per_epoch, int) or steps_per_epoch < 1
    ):
        raise ValueError(
            f"`steps_per_epoch` must be None or a positive integer. "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate!r}")
    _check_extra()
    model = _load_model(model_or_path)
    export.check_model(model, options)
    with tempfile.TemporaryDirectory(prefix="ghostnet_qat_") as tmp:
        export_graph(model, tmp)
        job = {
            "mode": "qat",
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "batch_size": batch_size,
            "learning_rate": float(learning_rate),
            "image_size": image_size,
            "io": options.io,
            "data_dir": None if data_dir is None else os.fspath(data_dir),
            "tflite_out": os.path.join(tmp, "model.tflite"),
        }
        if isinstance(train_data, str):
            job["train_spec"] = train_data
        elif isinstance(train_data, (tuple, list)) and len(train_data) == 2:
            job["train_arrays"] = _save_arrays(tmp, "train", *train_data)
        else:
            raise ValueError(
                "`train_data` must be a dataset spec string or an (images, labels) pair of "
                f"arrays. Received: train_data=<{type(train_data).__name__}>"
            )
        if predict_images is not None:
            job["predict"] = _save_arrays(tmp, "predict", predict_images)
            job["predictions_out"] = os.path.join(tmp, "predictions.npy")
        _run_worker(tmp, job, progress)
        data = pathlib.Path(job["tflite_out"]).read_bytes()
        data = export.finish(data, options, name=options.name or model.name, log=log)
        if output:
            from ghostnet_keras import files

            files.write_bytes(output, data)
            if progress:
                progress(f"Wrote {output} ({len(data):,} bytes)")
        if predict_images is not None:
            return data, np.load(job["predictions_out"])
        return data
