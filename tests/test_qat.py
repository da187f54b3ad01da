"""Quantization-aware training (tflite.qat): the tf_keras rebuild, int8 accuracy against
post-training quantization on real CIFAR-10 images, and the isolation of tf_keras/tfmot."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tflite import qat

# Only looked up, never imported: importing tfmot would switch this process to tf_keras.
for _package in ("tensorflow_model_optimization", "tf_keras"):
    if importlib.util.find_spec(_package) is None:
        pytest.skip(f"{_package} is not installed (extra 'qat')", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tflite_predict(flatbuffer, images):
    from tflite.evaluate import TFLiteClassifier

    return TFLiteClassifier(flatbuffer).predict(images)


def _check_isolated():
    """The caller's process still runs Keras 3, without tf_keras or tfmot."""
    assert "TF_USE_LEGACY_KERAS" not in os.environ
    assert keras.__version__.startswith("3.")
    assert "tensorflow_model_optimization" not in sys.modules
    assert "tf_keras" not in sys.modules


def test_translation_matches_keras(trained_cifar_ghostnet, cifar10_arrays):
    # The tf_keras graph QAT starts from (normalisation as a 1x1 depthwise conv, the SE
    # gate's x / 6 + 1 / 2 folded into its conv) computes what the Keras 3 model does.
    model, path, _ = trained_cifar_ghostnet
    images = cifar10_arrays[2][::5]  # 100 real test images
    lines = []
    rebuilt = qat.translate_predictions(path, images, progress=lines.append)
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(rebuilt, expected, atol=1e-5, rtol=0)
    _check_isolated()


def test_import_never_loads_tf_keras():
    code = (
        "import sys, ghostnet_keras, tflite.convert, tflite.qat, tflite.evaluate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow_model_optimization', 'tf_keras')]\n"
        "import os; assert 'TF_USE_LEGACY_KERAS' not in os.environ\n"
        "print(bad)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_untranslatable_layer_is_named():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="my_layer_norm")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    images = np.zeros((4, 32, 32, 3), "float32")
    with pytest.raises(ValueError, match="'my_layer_norm' of type LayerNormalization"):
        qat.qat_int8(model, (images, np.zeros(4, "int32")), progress=None)

    x = keras.layers.Conv2D(4, 3, activation="gelu", name="gelu_conv")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="'gelu_conv'.*activation='gelu'"):
        qat.qat_int8(model, (images, np.zeros(4, "int32")), progress=None)


def test_bad_arguments():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    data = (np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int32"))
    from tflite import export

    with pytest.raises(ValueError, match="Received: options=ExportOptions\\(quantize='none'"):
        qat.qat_int8(model, data, options=export.ExportOptions())
    with pytest.raises(ValueError, match="Received: epochs=-1"):
        qat.qat_int8(model, data, epochs=-1)
    with pytest.raises(ValueError, match="Received: model_or_path='missing.keras'"):
        qat.qat_int8("missing.keras", data)
    with pytest.raises(ValueError, match="as many labels as images"):
        qat.qat_int8(model, (data[0], np.zeros(3, "int32")))
    sequential = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="Functional model.*Received: model=<Sequential>"):
        qat.qat_int8(sequential, data)


def test_worker_error_comes_back_as_one_message(tmp_path):
    # A data problem found in the subprocess: one ValueError here, no worker traceback.
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="QAT failed: .*") as info:
        qat.qat_int8(model, f"folder:{empty}", progress=None)
    assert "Traceback" not in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    _check_isolated()


@pytest.mark.slow
def test_qat_int8_at_least_ptq_accuracy_with_uint8_io(
    trained_cifar_ghostnet, cifar10_arrays, cifar_tflite
):
    """QAT's int8 ``.tflite`` on 500 held-out real images is at least as accurate as PTQ's
    (minus 2 points: 10 of 500 images, about the sampling noise of 500 images around 30%
    accuracy between two int8 models of the same float network), and matches the QAT
    (fake-quant tf_keras) model it was converted from on >= 90% of the top-1 classes (the
    fake quantization is not bit-exact with TFLite's integer kernels, and this weak
    classifier's top-2 margins are often a few int8 steps; measured: 98.0%, while PTQ int8
    agrees with the float model on 95.8%). Both take raw uint8 pixels (scale 1, zero point 0:
    the app feeds the pixels themselves). PTQ is `cifar_tflite`'s uint8-io file (100
    calibration images); QAT trains one epoch on 1,500 images (150 per class). Measured on
    AVX-512: float 35.4%, PTQ int8 35.6%, QAT int8 37.0%."""
    from ai_edge_litert.interpreter import Interpreter

    from tflite import export, metadata
    from tflite import flatbuffer as fb

    _, path, float_accuracy = trained_cifar_ghostnet
    x_train, y_train, x_test, y_test = cifar10_arrays
    # PTQ: the uint8-io full-integer file of the TFLite tests (100 calibration images).
    ptq_accuracy = np.mean(
        _tflite_predict(cifar_tflite["int8_uint8_io"], x_test).argmax(1) == y_test
    )

    lines = []
    flatbuffer, qat_scores = qat.qat_int8(
        path,
        (x_train[::2], y_train[::2]),  # 1,500 images, 150 of each class
        epochs=1,
        batch_size=32,
        options=export.ExportOptions(
            quantize="int8", io="uint8", labels=[str(i) for i in range(10)]
        ),
        predict_images=x_test,
        progress=lines.append,
    )
    _check_isolated()
    assert any(line.startswith("QAT epoch 1/1") for line in lines), lines
    interpreter = Interpreter(model_content=flatbuffer)
    given, made = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert given["dtype"] == np.uint8 and tuple(given["quantization"]) == (1.0, 0)
    assert made["dtype"] == np.uint8 and tuple(given["shape"]) == (1, 32, 32, 3)
    tflite_scores = _tflite_predict(flatbuffer, x_test)
    qat_accuracy = np.mean(tflite_scores.argmax(1) == y_test)
    # Agreement: the QAT model's top-1 class has the highest .tflite score. The int8
    # softmax output has steps of 1/256, so a few images have tied top scores; a tie
    # that includes the QAT model's class counts as agreement.
    top = tflite_scores[np.arange(len(x_test)), qat_scores.argmax(1)]
    agreement = np.mean(top == tflite_scores.max(1))
    print(
        f"MEASURED float {float_accuracy:.3f}, PTQ int8 {ptq_accuracy:.3f}, QAT int8 "
        f"{qat_accuracy:.3f}, QAT tflite vs fake-quant agreement {agreement:.3f}"
    )
    assert qat_accuracy >= ptq_accuracy - 0.02
    assert agreement >= 0.90
    # Full-integer (the worker checks every tensor), uint8 at the io ends; finished as every
    # export: the final softmax alone in float (XNNPACK), and the metadata written last.
    assert fb.float_ops(flatbuffer) == ["DEQUANTIZE", "SOFTMAX"], fb.float_ops(flatbuffer)
    assert metadata.read_metadata(flatbuffer)["labels"] == [str(i) for i in range(10)]


def test_worker_reads_a_folder_spec(cifar10_dir, tmp_path):
    # The data-spec path of the worker (ghostnet_keras.data.make_dataset in the tf_keras
    # process), which `--qat_data=folder:...` takes: real, augmented 0-255 batches.
    from conftest import make_subset

    data = make_subset(cifar10_dir, tmp_path / "data", 10)  # train/ and test/, 100 each
    code = (
        "import json, sys\n"
        "from tflite import _qat_worker as worker\n"
        "job = {'batch_size': 32, 'train_spec': sys.argv[1]}\n"
        "data, batches = worker.train_dataset(job, [32, 32])\n"
        "x, y = next(iter(data))\n"
        "x, y = x.numpy(), y.numpy()\n"
        "print(json.dumps([batches, list(x.shape), str(x.dtype), float(x.min()),\n"
        "                  float(x.max()), sorted(set(y.tolist()))]))\n"
    )
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = ROOT
    result = subprocess.run(
        [sys.executable, "-c", code, f"folder:{data}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    batches, shape, dtype, low, high, labels = json.loads(result.stdout.splitlines()[-1])
    assert batches == 100 // 32 and shape == [32, 32, 32, 3] and dtype == "float32"
    assert 0.0 <= low < 50.0 and 200.0 < high <= 255.0
    assert set(labels) <= set(range(10)) and len(labels) >= 5
