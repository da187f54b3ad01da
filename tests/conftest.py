"""Shared test fixtures: the real image data sets from ../shared, unpacked once to a cache."""

import fcntl
import os
import pathlib
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("GHOSTNET_SHARED_DIR", ROOT.parent / "shared"))
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
