"""The command lines start quietly: no TensorFlow C++ start-up line reaches the terminal.

Each test is a real process with the user's default environment (no TF_CPP_MIN_LOG_LEVEL, no
verbose variable, Keras's default backend), where TensorFlow prints these lines on import.
"""

import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import ROOT

# TensorFlow's start-up lines: absl's prefixes, the CUDA probes, the CPU and oneDNN notes.
NOISE = re.compile(
    r"I0000|E0000|W0000|cudart_stub|cpu_feature_guard|cuInit|oneDNN|absl::InitializeLog"
)


def default_env():
    """This process's environment without the variables that change what TensorFlow prints
    (a user's explicit TF_CPP_MIN_LOG_LEVEL is kept by the command lines) or the backend."""
    own = ("TF_CPP_", "KERAS_BACKEND", "GHOSTNET_VERBOSE", "GHOSTNET_TRAIN_VERBOSE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _run(*args):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=default_env(),
        cwd=ROOT,
        timeout=300,
    )


def _noise(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


def test_import_ghostnet_keras_imports_no_keras_and_the_registry_sees_every_model():
    code = (
        "import sys, ghostnet_keras\n"
        "from ghostnet_keras import cli, constants, extras, files\n"
        "assert 'keras' not in sys.modules, sorted(m for m in sys.modules if 'keras' in m)\n"
        "assert ghostnet_keras.GhostNet100.__module__ == 'ghostnet_keras.ghostnet'\n"
        "assert 'keras' in sys.modules\n"
        # The registry's first look-up sees every model: importing every module adds none.
        "import importlib, pkgutil\n"
        "from ghostnet_keras import registry\n"
        "first = registry.list_models()\n"
        "for info in pkgutil.iter_modules(ghostnet_keras.__path__, 'ghostnet_keras.'):\n"
        "    if info.name != 'ghostnet_keras.data':\n"
        "        importlib.import_module(info.name)\n"
        "assert registry.list_models() == first and 'vgg16_cifar' in first, first\n"
    )
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tflite_convert_is_quiet(tmp_path):
    bad = _run("-m", "tflite.convert", "--model=no_such_model", f"--output={tmp_path / 'x.tflite'}")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Unknown model."), lines
    assert "Received: name='no_such_model'" in lines[0]
    assert _noise(bad) == []
    output = tmp_path / "resnet56.tflite"
    good = _run(
        "-m",
        "tflite.convert",
        "--model=resnet56",
        "--image_size=32",
        "--quantize=none",
        "--nocheck",
        f"--output={output}",
    )
    assert good.returncode == 0, good.stderr[-2000:]
    assert output.stat().st_size > 3_000_000  # 860,026 float32 parameters
    assert _noise(good) == []


def test_data_check_is_quiet(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    result = _run("-m", "ghostnet_keras.data", f"folder:{tmp_path}", "--check")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train: 4 of 4 images decode" in result.stdout
    assert _noise(result) == []


# What LiteRT and the TFLite converter write from C++ whatever the log level: LiteRT's note on
# its CPU delegate, and the MLIR quantizer's settings in an int8 conversion.
LITERT_NOISE = re.compile(r"XNNPACK delegate for CPU|fully_quantize: \d")


def test_tflite_int8_convert_and_evaluate_are_quiet(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / "data" / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.save(tmp_path / "small.keras")
    data = f"folder:{tmp_path / 'data'}"
    output = tmp_path / "small.tflite"
    convert = _run(
        "-m",
        "tflite.convert",
        f"--model={tmp_path / 'small.keras'}",
        "--quantize=int8",
        "--io=uint8",
        f"--calibration_data={data}",
        f"--output={output}",
    )
    assert convert.returncode == 0, convert.stderr[-2000:]
    assert "Check against Keras on 4 images" in convert.stdout  # LiteRT ran the file
    evaluate = _run("-m", "tflite.evaluate", f"--tflite={output}", f"--data={data}")
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    assert "images: 4" in evaluate.stdout
    for result in (convert, evaluate):
        assert "WARNING" not in result.stderr, result.stderr
        assert _noise(result) == []
        assert not LITERT_NOISE.search(result.stdout + result.stderr), result.stderr
    # `--verbose` shows them: the lines above are there to hide. (The evaluation's own
    # command line, loading the file only: no TensorFlow to import.)
    code = (
        "import sys\n"
        "from tflite import _cli, evaluate\n"
        "load = lambda args: evaluate.TFLiteClassifier(args.tflite)\n"
        f"argv = ['--tflite={output}', '--data=unused', '--verbose']\n"
        "sys.exit(_cli.run_cli(evaluate._parse_args, load, argv, required=()))\n"
    )
    verbose = _run("-c", code)
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert LITERT_NOISE.search(verbose.stderr), verbose.stderr


def test_a_tensorflow_runtime_error_is_one_clear_line():
    """A real TensorFlow runtime error (shapes known only when it runs, in a graph) as the
    commands print it: its type, what went wrong and the node, not where the op was defined;
    the same for the eager form; several root errors of one kind once."""
    import tensorflow as tf

    from ghostnet_keras import cli

    @tf.function(input_signature=[tf.TensorSpec(None), tf.TensorSpec(None)])
    def multiply(a, b):
        return a * b

    lines = []
    for run in (multiply, lambda a, b: a * b):
        try:
            run(tf.zeros([64]), tf.zeros([0, 32, 32, 3]))
        except tf.errors.InvalidArgumentError as error:
            assert "File " in error.message or "function_node" in error.message
            lines.append(cli.runtime_error_line(error))
    expected = "InvalidArgumentError: Incompatible shapes: [64] vs. [0,32,32,3]"
    assert lines == [f"{expected} (at node mul)", expected]

    class ReplicasError(Exception):  # the form of two replicas' errors (a mirrored strategy)
        message = (
            "Graph execution error:\n\nDetected at node r1/bn/mul defined at (most recent call "
            'last):\n  File "a.py", line 1, in f\n\n2 root error(s) found.\n  (0) '
            "INVALID_ARGUMENT:  Bad shapes\n\t [[{{node r1/bn/mul}}]]\n\t [[r1/div/_34]]\n  (1) "
            "INVALID_ARGUMENT:  Bad shapes\n\t [[{{node r1/bn/mul}}]]\n0 successful operations."
            "\n0 derived errors ignored. [Op:__inference_step_1]"
        )

    line = cli.runtime_error_line(ReplicasError())
    assert line == "ReplicasError: Bad shapes (at node r1/bn/mul)"
