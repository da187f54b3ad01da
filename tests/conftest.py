"""Shared test fixtures: the real image data sets from ../shared, unpacked once to a cache."""

import fcntl
import os
import pathlib
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


@pytest.fixture(scope="session")
def trained_cifar_ghostnet(cifar10_arrays, tmp_path_factory):
    """A C-GhostNet-0.5 (10 classes, 32x32, preprocessing in the graph) trained for 8 epochs
    on 3,000 real CIFAR-10 images, saved as ``.keras``; returns (model, path, test accuracy).

    It reaches about 30% test accuracy here (chance: 10%), enough that quantization errors show
    up as accuracy changes. Trained once per session (one pytest-xdist worker trains, the
    others load the saved file)."""
    import json

    import keras

    import ghostnet_keras

    x_train, y_train, x_test, y_test = cifar10_arrays

    def train(directory):
        keras.utils.set_random_seed(0)
        model = ghostnet_keras.GhostNet(
            width=0.5, classes=10, input_shape=(32, 32, 3), dropout_rate=0.0
        )
        model.compile(
            optimizer=keras.optimizers.Adam(3e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0, shuffle=True)
        accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
        model.save(directory / "cifar_ghostnet.keras")
        (directory / "accuracy.json").write_text(json.dumps(accuracy))

    directory = shared_across_workers(tmp_path_factory, "trained_cifar_ghostnet", train)
    path = directory / "cifar_ghostnet.keras"
    accuracy = json.loads((directory / "accuracy.json").read_text())
    return keras.saving.load_model(path), path, accuracy
