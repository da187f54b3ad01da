"""An install without tensorflow-datasets (``pip install ".[tflite]"``): image folders still
calibrate and evaluate, through the library and the `tflite` command lines, and a TFDS name
gives one line that names the extra to install (issue 12)."""

import os
import subprocess
import sys

import pytest

from ghostnet_keras.extras import install_hint

from conftest import ROOT, make_subset

pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter (ai-edge-litert) is needed")

# Runs in a fresh interpreter in which `import tensorflow_datasets` fails as if it were not
# installed; prints one "key: value" line per result.
SCRIPT = r"""
import sys


class NoTFDS:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow_datasets":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTFDS())
import keras
import numpy as np

from ghostnet_keras import data
from tflite import convert, evaluate

folder, out = sys.argv[1], sys.argv[2]
try:
    import tensorflow_datasets
except ImportError:
    print("hidden: yes")
source = data.image_source(f"folder:{folder}", "calibration", image_size=32, num_images=20)
print("calibration:", np.concatenate([x for x, _ in source.batches]).shape)
info = data.dataset_info(f"folder:{folder}")
print("train:", info.num_train_examples, "eval:", info.num_eval_examples)
try:
    data.parse_dataset("cifar10")
except ImportError as err:
    print("library:", err)
keras.utils.set_random_seed(0)
inputs = keras.Input((32, 32, 3))
x = keras.layers.Rescaling(1 / 255)(inputs)
x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
model.save(f"{out}/small.keras")
args = [f"--model={out}/small.keras", "--quantize=int8", "--num_calibration=20"]
args += ["--check_images=20", f"--output={out}/small.tflite"]
print("convert:", convert.main([*args, f"--calibration_data=folder:{folder}"]), flush=True)
print("evaluate:", evaluate.main([f"--tflite={out}/small.tflite", f"--data=folder:{folder}"]))
print("tfds:", evaluate.main([f"--tflite={out}/small.tflite", "--data=cifar10"]), flush=True)
print("modules:", sorted(m for m in sys.modules if m.startswith("tensorflow_datasets")))
"""


def test_folders_without_tensorflow_datasets(cifar10_dir, tmp_path):
    folder = make_subset(cifar10_dir, tmp_path / "cifar", 2)  # train/ and test/, 20 each
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert lines["hidden"] == "yes"
    assert lines["calibration"] == "(20, 32, 32, 3)"
    assert lines["train"] == "20 eval: 20"
    hint = "tensorflow_datasets is not installed; it is needed for TFDS data sets. Install it "
    hint += f"with: {install_hint('train')}"  # where this package was installed from
    assert lines["library"] == hint
    assert "Calibrating on 20 images" in out
    assert lines["convert"] == "0" and lines["evaluate"] == "0"
    assert out.count("images: 20") == 2  # the check of convert, and evaluate
    # The TFDS name: exit 2 and one error line naming the extra, no traceback.
    assert lines["tfds"] == "2"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {hint}"], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert lines["modules"] == "[]"
