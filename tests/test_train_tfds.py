"""The trainer on TFDS names, as a user runs it (issue 23, items 6 and 18): a data set that
TFDS prepares from local files, and a data set that would need a download with no network.

Both run the command line in real processes, in parallel (most of their time is TensorFlow's
start-up).
"""

import json
import socket
import sys

from test_train_faults import assert_one_error_line, finish, lines, start

from conftest import MECHANICS_MODEL, make_subset

# A user's own TFDS data set: a builder module that reads local JPEGs. The trainer prepares it
# (download_and_prepare) on first use, as it prepares cifar10 online.
BUILDER = """
import pathlib

import tensorflow_datasets as tfds

SOURCE = pathlib.Path({source!r})


class GhostnetTinyImages(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        names = sorted(p.name for p in (SOURCE / "train").iterdir())
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {{
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=names),
                }}
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {{split: self._generate_examples(SOURCE / split) for split in ("train", "test")}}

    def _generate_examples(self, folder):
        for path in sorted(folder.glob("*/*.jpg")):
            yield f"{{path.parent.name}}/{{path.name}}", {{
                "image": str(path), "label": path.parent.name
            }}
"""


def tfds_command(model_dir, dataset, data_dir, *extra, module=None):
    """The trainer on a TFDS name; with ``module``, that module is imported first (a user's
    own builder, registered by its import)."""
    if module:
        start_line = f"import {module}; from training import train; train.cli()"
        command = [sys.executable, "-c", start_line]
    else:
        command = [sys.executable, "-m", "training.train"]
    return [
        *command,
        f"--dataset={dataset}",
        f"--data_dir={data_dir}",
        f"--model={MECHANICS_MODEL}",
        "--image_size=32",
        "--batch_size=10",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--log_every=100",
        "--eval_every=0",
        "--seed=3",
        f"--model_dir={model_dir}",
        *extra,
    ]


def test_tfds_data_sets_prepare_locally_and_offline_is_one_line(cifar10_dir, tmp_path):
    """- A TFDS data set that its builder prepares from local files (2 training and 1 test
      JPEG of each CIFAR-10 class): the trainer prepares it in --data_dir and trains on it.
      Before: on a fresh `.[train]` install any TFDS name ended in a 77-line
      `No module named 'importlib_resources'`.
    - cifar10 offline (its download server unreachable: here a proxy that refuses every
      connection, so the test does not depend on this machine's network): one line naming
      --data_dir, how to prepare it offline and `folder:`, with nothing left in --data_dir.
      Before: 3.5 minutes of retries and progress bars, then a NameResolutionError line,
      and `downloads/` folders left behind.
    """
    source = make_subset(cifar10_dir, tmp_path / "jpeg", 2, splits=["train"])
    make_subset(cifar10_dir, source, 1, splits=["test"])
    (tmp_path / "ghostnet_tiny_images.py").write_text(BUILDER.format(source=str(source)))
    local_data = tmp_path / "tfds"
    offline_data = tmp_path / "offline"
    refuser = socket.socket()  # bound, never listening: connections to it are refused
    refuser.bind(("127.0.0.1", 0))
    proxy = f"http://127.0.0.1:{refuser.getsockname()[1]}"
    try:
        local = start(
            tfds_command(
                tmp_path / "run", "ghostnet_tiny_images", local_data, module="ghostnet_tiny_images"
            ),
            env={"PYTHONPATH": f"{tmp_path}:{sys.path[0]}"},
        )
        offline = start(
            tfds_command(tmp_path / "offline_run", "cifar10", offline_data),
            env={"https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""},
        )
        results = {"local": finish(local, timeout=300), "offline": finish(offline, timeout=300)}
    finally:
        refuser.close()

    code, out, err = results["local"]
    assert code == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert (local_data / "ghostnet_tiny_images" / "1.0.0" / "dataset_info.json").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["eval_split"] == "test"
    assert metrics["eval_examples"] == 10 and metrics["accuracy"] is not None
    assert "Training vgg16_cifar on ghostnet_tiny_images (10 classes, 20 training images)" in out

    code, out, err = results["offline"]
    assert_one_error_line(
        code,
        err,
        f"cifar10 is not prepared in {offline_data} and cannot be downloaded",
        "cannot be reached",
        "tfds build cifar10",
        "--dataset=folder:PATH",
        "Received: dataset=cifar10",
    )
    assert not offline_data.exists() or not any(offline_data.rglob("*")), lines(err)
