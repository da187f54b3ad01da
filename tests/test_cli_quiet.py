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
