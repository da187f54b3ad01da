"""Shared test fixtures: the real image data sets from ../shared, unpacked once to a cache."""

import fcntl
import itertools
import os
import pathlib
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("GHOSTNET_SHARED_DIR", ROOT.parent / "shared"))
# GHOSTNET_EXHAUSTIVE=1: every registry model through the TFLite sweep and every GhostNetV2/V3
# name through a real training run, instead of the models that cover their kinds of layers.
EXHAUSTIVE = os.environ.get("GHOSTNET_EXHAUSTIVE") == "1"
CACHE = pathlib.Path(
    os.environ.get("GHOSTNET_TEST_CACHE", pathlib.Path.home() / ".cache" / "ghostnet-keras-tests")
)


# The model of the tests of the trainer's mechanics (resume, faults, two workers, errors): the
# registry model with the fewest layers (52), so that such a run spends its time in the
# trainer rather than in tracing and optimising a deep graph (two workers, 6 steps: 19 s,
# against 42 s with C-GhostNet-0.5 at width 0.35; AVX-512). The real training run is
# C-GhostNet's (`CIFAR_RUN`).
MECHANICS_MODEL = "vgg16_cifar"

# Session fixtures that one worker makes while the others wait for it.
_MADE_ONCE = {"trained_cifar_ghostnet", "cifar_training_run", "cifar_tflite", "finished_run"}


def pytest_collection_modifyitems(config, items):
    """Orders the run for pytest-xdist's work stealing, which hands worker i the i-th
    contiguous block of this list (the blocks as equal in count as can be) and lets an idle
    worker take tests from the end of a busy one's queue. Every block starts with its share of
    the slow tests and ends with short ones, so that a run ends on short tests, not on one long
    test with the other workers idle. The slow tests that use one `_MADE_ONCE` fixture go
    together, first in a block (the first of them makes the fixture), the other slow tests are
    dealt in turn, and the short tests that use a `_MADE_ONCE` fixture end the blocks (made by
    then). `exhaustive` tests are skipped unless GHOSTNET_EXHAUSTIVE=1, and count as short.
    Stable: file order otherwise."""
    for item in items:
        if item.get_closest_marker("exhaustive") and not EXHAUSTIVE:
            item.add_marker(pytest.mark.skip(reason=_EXHAUSTIVE_ONLY))
    made_once = {item: tuple(sorted(_MADE_ONCE & set(item.fixturenames))) for item in items}
    slow = [i for i in items if i.get_closest_marker("slow") and not i.get_closest_marker("skip")]
    fixture_groups = {}
    for item in slow:
        if made_once[item]:
            fixture_groups.setdefault(made_once[item], []).append(item)
    groups = [*fixture_groups.values(), *([i] for i in slow if not made_once[i])]
    last = [i for i in items if i not in slow and made_once[i]]
    short = iter(i for i in items if i not in slow and not made_once[i])
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    blocks = [[] for _ in range(workers)]
    for n, group in enumerate(groups):
        blocks[n % workers].extend(group)
    tails = [last[i::workers] for i in range(workers)]
    left = len(items)
    for i in range(workers):
        size = left // (workers - i)  # work stealing's first share of what is left
        left -= size
        blocks[i].extend(itertools.islice(short, max(0, size - len(blocks[i]) - len(tails[i]))))
    blocks[-1].extend(short)
    items[:] = [item for block, tail in zip(blocks, tails, strict=True) for item in block + tail]


_EXHAUSTIVE_ONLY = "one of the models a sampled run covers; GHOSTNET_EXHAUSTIVE=1 runs it"


def _unpack(archive, subdir=""):
    """Unpacks ``SHARED/datasets/archive`` into the cache once; returns the data root."""
    path = SHARED / "datasets" / archive
    if not path.exists():
        pytest.skip(f"{path} is missing: the real data sets live in ../shared/datasets")
    target = CACHE / archive.split(".")[0]
    done = target / ".unpacked"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{archive}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one unpacker across pytest-xdist workers
        if not done.exists():
            with tarfile.open(path) as tar:
                tar.extractall(target, filter="data")
            done.touch()
    return target / subdir


@pytest.fixture(scope="session")
def cifar10_dir():
    """CIFAR-10 as JPEG folders: ``train|test/<class>/*.jpg``, 32x32, 50,000 + 10,000 images."""
    return _unpack("cifar10-jpeg.tgz")


@pytest.fixture(scope="session")
def imagenette_dir():
    """1,700 ImageNet images of 10 classes at 160x160: ``train|val/<wnid>/*.jpg``."""
    return _unpack("imagenette-160-subset.tgz", "imagenette-160")


def make_subset(source, target, per_class, splits=None):
    """Links the first ``per_class`` images of every class of each split into ``target``."""
    target = pathlib.Path(target)
    for split_dir in sorted(pathlib.Path(source).iterdir()):
        if not split_dir.is_dir() or (splits and split_dir.name not in splits):
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            out = target / split_dir.name / class_dir.name
            out.mkdir(parents=True, exist_ok=True)
            for image in sorted(class_dir.iterdir())[:per_class]:
                (out / image.name).symlink_to(image)
    return target


def load_image_folder(root, per_class, size=None):
    """The first ``per_class`` images of every ``root/<class>/`` as float32 0-255 RGB arrays
    (resized to ``size`` x ``size`` if given) and int labels in sorted class order."""
    import numpy as np
    from PIL import Image

    images, labels = [], []
    classes = sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir())
    for label, class_dir in enumerate(classes):
        for path in sorted(class_dir.iterdir())[:per_class]:
            with Image.open(path) as image:
                image = image.convert("RGB")
                if size:
                    image = image.resize((size, size), Image.BILINEAR)
                images.append(np.asarray(image, "float32"))
            labels.append(label)
    return np.stack(images), np.array(labels, "int32")


@pytest.fixture(scope="session")
def cifar10_arrays(cifar10_dir):
    """A small real CIFAR-10 sample: 300 training and 50 test images per class."""
    x_train, y_train = load_image_folder(cifar10_dir / "train", 300)
    x_test, y_test = load_image_folder(cifar10_dir / "test", 50)
    return x_train, y_train, x_test, y_test


def shared_across_workers(tmp_path_factory, name, make):
    """Runs ``make(directory)`` once per test session, even with pytest-xdist: the first
    worker to get here makes it in a directory shared by all workers (under a lock), the
    others wait for it and reuse the files. Returns that directory."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, above each worker's own
    directory = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".done").exists():
            directory.mkdir(exist_ok=True)
            make(directory)
            (directory / ".done").touch()
    return directory


# The run of `cifar_training_run`: C-GhostNet-0.5 at 32x32, 6 epochs of SGD (the default
# optimizer, cosine schedule, label smoothing) on 2,000 real CIFAR-10 images (200 per class).
CIFAR_RUN = dict(
    model="ghostnet_050",
    image_size=32,
    batch_size=64,
    epochs=6,
    learning_rate=0.2,
    warmup_epochs=1,
    dropout_rate=0.0,
    eval_every=0,
    log_every=1000,
    seed=0,
)


@pytest.fixture(scope="session")
def cifar_training_run(cifar10_dir, tmp_path_factory):
    """One real training run (`training.loop.train` with `CIFAR_RUN`) on 200 training images
    per class, evaluated on 100 test images per class; the training folder also holds a file
    that is not an image (``train/cat/broken.jpg``). Made once per session (one pytest-xdist
    worker trains, the others wait and read its files). Returns a dict: ``dir`` (the run's
    model directory), ``metrics`` (what `train` returned), ``lines`` (what it printed) and
    ``stderr`` (what the process wrote to file descriptor 2 meanwhile)."""
    import json

    def train(directory):
        from training import loop, recipes

        data = make_subset(cifar10_dir, directory / "data", 200, splits=["train"])
        make_subset(cifar10_dir, data, 100, splits=["test"])
        (data / "train" / "cat" / "broken.jpg").write_bytes(b"this is not a JPEG")
        config = recipes.make_config(
            dataset=f"folder:{data}", model_dir=str(directory / "run"), **CIFAR_RUN
        )
        lines = []
        with open(directory / "stderr.txt", "w") as err:  # TensorFlow's warnings: fd 2
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            try:
                metrics = loop.train(config, printer=lines.append)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
        (directory / "result.json").write_text(json.dumps({"metrics": metrics, "lines": lines}))

    directory = shared_across_workers(tmp_path_factory, "cifar_training_run", train)
    result = json.loads((directory / "result.json").read_text())
    result["dir"] = directory / "run"
    result["stderr"] = (directory / "stderr.txt").read_text()
    return result


@pytest.fixture(scope="session")
def trained_cifar_ghostnet(cifar_training_run, cifar10_arrays):
    """The C-GhostNet-0.5 of `cifar_training_run` (10 classes, 32x32, preprocessing in the
    graph), loaded from its ``model.keras``; returns (model, path, accuracy on the 500 test
    images of `cifar10_arrays`).

    It reaches about 35% test accuracy (chance: 10%; 35.4% on AVX-512), enough that
    quantization errors show up as accuracy changes."""
    import keras

    path = cifar_training_run["dir"] / "model.keras"
    model = keras.saving.load_model(path)
    _, _, x_test, y_test = cifar10_arrays
    accuracy = float((model.predict(x_test, verbose=0).argmax(1) == y_test).mean())
    return model, path, accuracy


# The `.tflite` files of `cifar_tflite`: name -> `tflite.export.ExportOptions` settings. The
# calibration images (200 training images, every class) are added by the fixture.
CIFAR_TFLITE = {
    "float32": dict(quantize="none"),
    "float16": dict(quantize="float16"),
    "dynamic": dict(quantize="dynamic"),
    "int8": dict(quantize="int8"),
    "int8_uint8_io": dict(quantize="int8", io="uint8", num_calibration=100),
}


@pytest.fixture(scope="session")
def cifar_tflite(trained_cifar_ghostnet, cifar10_arrays, cifar10_dir, tmp_path_factory):
    """The trained C-GhostNet of `trained_cifar_ghostnet` exported to every `CIFAR_TFLITE`
    variant as `python -m tflite.convert` exports (`tflite.export.export_variants`: graph
    rewrites, one SavedModel export, flatbuffer rewrites, metadata with the CIFAR-10 class
    names), calibrated on 200 training images spread over the 10 classes (the uint8-io file
    on the first 100 of them). Made once per session; returns {name: flatbuffer bytes}."""

    def convert(directory):
        from tflite import export

        model = trained_cifar_ghostnet[0]
        x_train = cifar10_arrays[0]  # sorted by class
        images = x_train[:: len(x_train) // 200][:200]
        classes = sorted(p.name for p in (cifar10_dir / "train").iterdir() if p.is_dir())
        variants = [
            export.ExportOptions(labels=classes, **settings) for settings in CIFAR_TFLITE.values()
        ]
        files = export.export_variants(model, variants, representative_images=images)
        for name, flatbuffer in zip(CIFAR_TFLITE, files, strict=True):
            (directory / f"{name}.tflite").write_bytes(flatbuffer)

    directory = shared_across_workers(tmp_path_factory, "cifar_tflite", convert)
    return {name: (directory / f"{name}.tflite").read_bytes() for name in CIFAR_TFLITE}
