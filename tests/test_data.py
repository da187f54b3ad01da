"""The input pipelines of ghostnet_keras.data on real images: CIFAR-10 and Imagenette folders, and a
TFDS data set built offline from the same files."""

import ast
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

from ghostnet_keras import data
from ghostnet_keras.constants import CROP_FRACTION
from ghostnet_keras.data import check, randaugment, transforms

from conftest import load_image_folder, make_subset

CIFAR_CLASSES = (
    "airplane automobile bird cat deer dog frog horse ship truck".split()  # sorted folder names
)


@pytest.fixture(scope="module")
def cifar_small(cifar10_dir, tmp_path_factory):
    """4 training and 2 test images per CIFAR-10 class."""
    root = tmp_path_factory.mktemp("cifar_small")
    make_subset(cifar10_dir, root, 4, splits=["train"])
    make_subset(cifar10_dir, root, 2, splits=["test"])
    return root


@pytest.fixture(scope="module")
def imagenette_small(imagenette_dir, tmp_path_factory):
    """3 training and 2 validation images per Imagenette class (160 pixels, not square)."""
    root = tmp_path_factory.mktemp("imagenette_small")
    make_subset(imagenette_dir, root, 3, splits=["train"])
    make_subset(imagenette_dir, root, 2, splits=["val"])
    return root


def _all(ds):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in ds), strict=True)
    return np.concatenate(images), np.concatenate(labels)


def _tf_load(folder, per_class):
    """The first ``per_class`` images of every class folder, decoded by TensorFlow, and their
    labels in sorted class order."""
    images, labels = [], []
    for label, class_dir in enumerate(sorted(p for p in pathlib.Path(folder).iterdir())):
        for path in sorted(class_dir.iterdir())[:per_class]:
            images.append(tf.io.decode_image(tf.io.read_file(str(path)), channels=3).numpy())
            labels.append(label)
    return np.stack(images).astype("float32"), np.array(labels)


def _digest(image):
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Specs and errors


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("", r"Received: dataset=''$"),
        ("Not A Name", r"Received: dataset=Not A Name$"),
        ("cifar100x", r"Did you mean cifar100.*Received: dataset=cifar100x$"),
        ("folder:", r"needs a path.*Received: dataset=folder:$"),
    ],
)
def test_bad_spec(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.parse_dataset(spec)


def test_parse_dataset():
    spec = data.parse_dataset("imagenette/160px-v2:1.0.0")
    assert (spec.kind, spec.name, spec.path) == ("tfds", "imagenette/160px-v2:1.0.0", None)
    spec = data.parse_dataset("folder:/data/flowers")
    assert (spec.kind, spec.path) == ("folder", "/data/flowers")


def test_folder_errors(tmp_path, cifar10_dir):
    def check(root, *words):
        spec = f"folder:{root}"
        with pytest.raises(ValueError, match=rf"Received: dataset={spec}$") as info:
            data.dataset_info(spec)
        for word in words:
            assert word in str(info.value)

    check(tmp_path / "missing", "does not exist", "train/<class>/*")
    (tmp_path / "a_file").write_text("")
    check(tmp_path / "a_file", "is not a folder")
    (tmp_path / "no_train" / "val" / "cat").mkdir(parents=True)
    check(tmp_path / "no_train", "no train/ sub-folder")
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "val" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "cat" / "notes.txt").write_text("not an image")
    check(tmp_path / "empty", "holds no images", "<class>/*.jpg")
    make_subset(cifar10_dir, tmp_path / "no_eval", 1, splits=["train"])
    check(tmp_path / "no_eval", "no evaluation split", "val/<class>/*")
    make_subset(cifar10_dir, tmp_path / "extra", 1, splits=["train", "test"])
    (tmp_path / "extra" / "test" / "zebra").mkdir()
    shutil.copy(
        next((cifar10_dir / "train" / "cat").iterdir()), tmp_path / "extra/test/zebra/z.jpg"
    )
    check(tmp_path / "extra", "zebra")


def test_imagenet2012_manual_download_error(tmp_path):
    with pytest.raises(ValueError, match=r"Received: dataset=imagenet2012$") as info:
        data.dataset_info("imagenet2012", data_dir=str(tmp_path))
    message = str(info.value)
    assert f"{tmp_path}/downloads/manual/" in message
    assert "ILSVRC2012_img_train.tar" in message and "ILSVRC2012_img_val.tar" in message
    # Once the training archive is there, only the missing one is asked for.
    (tmp_path / "downloads" / "manual").mkdir(parents=True)
    (tmp_path / "downloads" / "manual" / "ILSVRC2012_img_train.tar").touch()
    with pytest.raises(ValueError, match=r"put ILSVRC2012_img_val.tar \(from"):
        data.dataset_info("imagenet2012", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(split="test"), r"Received: split='test'$"),
        (dict(batch_size=0), r"Received: batch_size=0$"),
        (dict(image_size=4), r"Received: image_size=4$"),
        (dict(crop_fraction=1.5), r"Received: crop_fraction=1.5$"),
        (dict(randaugment="strong"), r"Received: randaugment='strong'$"),
    ],
)
def test_bad_arguments(cifar_small, kwargs, pattern):
    args = dict(split="train", training=True, batch_size=4) | kwargs
    with pytest.raises(ValueError, match=pattern):
        data.make_dataset(f"folder:{cifar_small}", **args)


def test_parse_randaugment():
    assert data.parse_randaugment(None) is None
    assert data.parse_randaugment(False) is None
    assert data.parse_randaugment(True) == (2, 9.0)
    assert data.parse_randaugment("rand-m7-n3") == (3, 7.0)
    assert data.parse_randaugment("2,10") == (2, 10.0)
    assert data.parse_randaugment((1, 5)) == (1, 5.0)


# ------------------------------------------------------------------------------------------------
# Folders


def test_folder_info_and_labels(cifar_small):
    info = data.dataset_info(f"folder:{cifar_small}")
    assert info.class_names == tuple(CIFAR_CLASSES)
    assert (info.num_classes, info.train_split, info.eval_split) == (10, "train", "test")
    assert (info.num_train_examples, info.num_eval_examples) == (40, 20)

    # The eval pipeline at the images' own size gives the decoded files, in order, each with
    # the label of its folder.
    ds = data.make_dataset(
        f"folder:{cifar_small}", "eval", training=False, batch_size=8, image_size=32
    )
    images, labels = _all(ds)
    assert images.dtype == np.float32 and images.shape == (20, 32, 32, 3)
    assert labels.dtype == np.float32 and labels.shape == (20, 10)
    # PIL decodes the files independently (its JPEG decoder differs by a few levels).
    expected_images, expected_labels = load_image_folder(cifar_small / "test", 2)
    np.testing.assert_array_equal(labels, np.eye(10)[expected_labels])
    difference = np.abs(images - expected_images)
    assert difference.max() <= 8 and difference.mean(axis=(1, 2, 3)).max() < 1.5


def test_training_batches(cifar_small):
    ds = data.make_dataset(
        f"folder:{cifar_small}", "train", training=True, batch_size=16, image_size=32, seed=1
    )
    assert ds.element_spec[0].shape == (16, 32, 32, 3)  # static: drop_remainder for training
    batches = list(ds.take(5))  # 80 images: the 40 repeat
    for images, labels in batches:
        images, labels = images.numpy(), labels.numpy()
        assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 255
        assert images.max() > 100  # 0-255, not 0-1
        np.testing.assert_array_equal(labels.sum(-1), 1)
    # Every class is seen: 4 images each in the first epoch.
    first_epoch = np.concatenate([b[1].numpy() for b in batches])[:40]
    np.testing.assert_array_equal(first_epoch.sum(0), 4)

    ds = data.make_dataset(
        f"folder:{cifar_small}",
        "train",
        training=True,
        batch_size=16,
        image_size=32,
        one_hot=False,
        repeat=False,
        drop_remainder=False,
    )
    labels = np.concatenate([y.numpy() for _, y in ds])
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), [4] * 10)


def test_small_image_crop_is_a_window_of_the_padded_image(cifar_small):
    """32x32 training images are random 32x32 windows of the image zero-padded by 4 (then
    maybe flipped): checked pixel by pixel without colour jitter."""
    originals, labels = _tf_load(cifar_small / "train", 4)
    padded = np.pad(originals, [(0, 0), (4, 4), (4, 4), (0, 0)])
    ds = data.make_dataset(
        f"folder:{cifar_small}",
        "train",
        training=True,
        batch_size=8,
        image_size=32,
        seed=3,
        color_jitter=0,
        one_hot=False,
    )
    images, batch_labels = _all(ds.take(1))
    shifts = set()
    for image, label in zip(images, batch_labels, strict=True):
        matches = [
            (i, dy, dx)
            for i in np.flatnonzero(labels == label)
            for dy in range(9)
            for dx in range(9)
            for candidate in (image, image[:, ::-1])
            if np.abs(padded[i, dy : dy + 32, dx : dx + 32] - candidate).max() <= 1.5
        ]
        assert matches, "a training image is not a window of a padded training image"
        shifts.add(matches[0][1:])
    assert len(shifts) > 1


def test_eval_transform_matches_pil(imagenette_small):
    """Resize the shorter side to floor(size / CROP_FRACTION), cut the centre: as
    timm/torchvision. Checked on real photos made portrait, landscape and square."""
    paths = sorted((imagenette_small / "val").glob("*/*"))[:3]
    size = 96
    scale = int(size / CROP_FRACTION)  # 109
    for path, box in zip(paths, [(0, 0, 160, 120), (10, 0, 130, 160), None], strict=True):
        with Image.open(path) as pil:
            pil = pil.convert("RGB").crop(box) if box else pil.convert("RGB")
        w, h = pil.size
        new = (scale, int(scale * h / w)) if w <= h else (int(scale * w / h), scale)
        resized = np.asarray(pil.resize(new, Image.BILINEAR), np.float32)
        top, left = int(round((new[1] - size) / 2)), int(round((new[0] - size) / 2))
        expected = resized[top : top + size, left : left + size]
        out = data.eval_transform(np.asarray(pil), size, CROP_FRACTION).numpy()
        assert out.shape == (size, size, 3)
        # TF's antialiased bilinear and PIL's differ by rounding only.
        difference = np.abs(out - expected)
        assert difference.mean() < 1.0 and np.percentile(difference, 99) < 6, (path, box)
    # Images no larger than the output (CIFAR) are just resized.
    small = tf.random.uniform([20, 24, 3], 0, 255)
    np.testing.assert_allclose(
        data.eval_transform(small, 32).numpy(),
        tf.image.resize(small, [32, 32], antialias=True).numpy(),
    )


@pytest.mark.parametrize("cache", [True, False])
def test_imagenet_size_training(imagenette_small, cache):
    """224x224 random-resized crops of 160-pixel JPEGs, decoded crop-only (cache=False) or
    from decoded images in memory (cache=True); same seed, same batches."""

    def batches(seed, randaugment=None):
        ds = data.make_dataset(
            f"folder:{imagenette_small}",
            "train",
            training=True,
            batch_size=6,
            image_size=224,
            seed=seed,
            cache=cache,
            randaugment=randaugment,
        )
        return _all(ds.take(2))

    images, labels = batches(0)
    assert images.shape == (12, 224, 224, 3) and labels.shape == (12, 10)
    assert 0 <= images.min() and images.max() <= 255
    again, labels_again = batches(0)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    other, _ = batches(1)
    assert np.abs(images - other).mean() > 10
    if not cache:
        return
    augmented, _ = batches(0, randaugment=(2, 9))
    assert augmented.shape == images.shape and 0 <= augmented.min() and augmented.max() <= 255
    assert np.abs(images - augmented).mean() > 1


def test_random_resized_crop_windows():
    """Crop windows cover 8%-100% of the image with aspect ratios 3/4-4/3, spread over that
    range (the Inception / timm RandomResizedCrop distribution)."""
    areas, ratios = [], []
    for i in range(300):
        begin, size = transforms.crop_window(tf.constant([160, 200, 3]), tf.constant([i, 7]))
        (top, left, _), (h, w, _) = begin.numpy(), size.numpy()
        assert top >= 0 and left >= 0 and top + h <= 160 and left + w <= 200
        areas.append(h * w / (160 * 200))
        ratios.append(w / h)
    assert 0.075 <= min(areas) < 0.15 and max(areas) > 0.85
    assert min(ratios) > 0.7 and max(ratios) < 1.42 and np.std(ratios) > 0.1


def test_randaugment_equalize_matches_pil(cifar_small):
    path = sorted((cifar_small / "train" / "ship").iterdir())[0]
    with Image.open(path) as pil:
        expected = np.asarray(ImageOps.equalize(pil.convert("RGB")), np.float32)
        image = np.asarray(pil.convert("RGB"), np.float32)
    np.testing.assert_array_equal(randaugment.equalize(tf.constant(image)).numpy(), expected)
    # Every one of the 14 operations keeps the shape and the 0-255 range.
    outputs = [
        randaugment.rand_augment(tf.constant(image), tf.constant([i, 0]), 1, 9).numpy()
        for i in range(40)
    ]
    assert all(o.shape == image.shape and 0 <= o.min() and o.max() <= 255 for o in outputs)
    assert len({_digest(o) for o in outputs}) > 10


def test_sharding_partitions_the_files(cifar_small):
    def shard(i, n):
        context = tf.distribute.InputContext(n, i, n)
        ds = data.make_dataset(
            f"folder:{cifar_small}",
            "train",
            training=False,
            batch_size=64,
            image_size=32,
            input_context=context,
            one_hot=False,
        )
        images, labels = _all(ds)
        return {_digest(x) for x in images}, labels

    everything, _ = shard(0, 1)
    first, labels_0 = shard(0, 2)
    second, labels_1 = shard(1, 2)
    assert len(everything) == 40 and len(first) == len(second) == 20
    assert not first & second and first | second == everything
    np.testing.assert_array_equal(np.bincount(labels_0), [2] * 10)  # classes stay balanced


def test_corrupt_files_are_skipped_with_a_warning(cifar_small, tmp_path, capfd):
    root = make_subset(cifar_small, tmp_path / "data", 2)
    good = next((root / "train" / "cat").iterdir()).read_bytes()
    bad = {
        "text.jpg": b"this is not an image",
        "empty.png": b"",
        "truncated.jpg": good[: len(good) // 2],
        "garbage.jpg": good[:20] + bytes(range(256)) * 2,
    }
    for name, contents in bad.items():
        (root / "train" / "cat" / name).write_bytes(contents)
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    capfd.readouterr()
    for cache in (True, False):
        ds = data.make_dataset(
            f"folder:{root}",
            "train",
            training=True,
            batch_size=1,
            image_size=32,
            cache=cache,
            repeat=False,
            one_hot=False,
        )
        labels = np.concatenate([y.numpy() for _, y in ds])
        np.testing.assert_array_equal(np.bincount(labels), [2] * 10)  # the 20 good images
        err = capfd.readouterr().err
        for name in bad:
            assert f'skipping "{root / "train" / "cat" / name}"' in err, err


def test_folder_changes_are_seen(cifar_small, tmp_path):
    """Folder listings are remembered between calls, but not past a change to a class folder."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    assert data.dataset_info(f"folder:{root}").num_train_examples == 10
    shutil.copy(next((root / "train" / "cat").iterdir()), root / "train" / "cat" / "copy.jpg")
    assert data.dataset_info(f"folder:{root}").num_train_examples == 11


def test_check_cli(cifar_small, tmp_path, capfd):
    """`python -m ghostnet_keras.data folder:PATH --check` names the files training would skip."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    (root / "test" / "dog" / "broken.jpg").write_bytes(b"<html>404</html>")
    # Non-zero, so that it can gate a pipeline (issue 13: it was 0).
    assert check.main([f"folder:{root}", "--check"]) == 1
    out, err = capfd.readouterr()
    assert "10 classes (airplane, automobile, bird" in out
    assert "train: 10 of 10 images decode" in out and "eval: 10 of 11 images decode" in out
    broken = root / "test" / "dog" / "broken.jpg"
    assert f"1 image(s) cannot be decoded; training skips them:\n    {broken}" in out
    assert check.main([f"folder:{tmp_path / 'nothing'}"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: The image folder") and "Traceback" not in "".join(err)
    (root / "test" / "dog" / "broken.jpg").unlink()
    assert check.main([f"folder:{root}", "--check"]) == 0  # all good: 0
    assert "eval: 10 of 10 images decode" in capfd.readouterr().out


def test_decoded_cache_is_automatic_for_small_data(cifar_small):
    def graph(cache):
        ds = data.make_dataset(
            f"folder:{cifar_small}",
            "eval",
            training=False,
            batch_size=4,
            image_size=32,
            cache=cache,
        )
        return tf.raw_ops.DatasetToGraphV2(input_dataset=ds._variant_tensor).numpy()

    assert b"CacheDataset" in graph(None)  # 40 KB of decoded images
    assert b"CacheDataset" not in graph(False)


# ------------------------------------------------------------------------------------------------
# Hostile folders (issue 13, item 9): each surprise is named with its path, or refused


def _replace(path, contents):
    """Puts ``contents`` at ``path`` (a link into the shared data set is replaced, not followed)."""
    path.unlink(missing_ok=True)
    path.write_bytes(contents)


def test_empty_class_folders(cifar_small, tmp_path, capfd):
    """An empty training class would be a class the model never sees: refused, with its path.
    An empty evaluation class is only a gap in the evaluation: a warning with its path."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    for image in (root / "test" / "cat").iterdir():
        image.unlink()
    info = data.dataset_info(f"folder:{root}")
    assert (info.num_classes, info.num_train_examples, info.num_eval_examples) == (10, 10, 9)
    assert f"class folder(s) hold no images: {root / 'test' / 'cat'}" in capfd.readouterr().err
    data.image_source(f"folder:{root}", "eval", image_size=32, num_images=1)
    assert f"the class folder {root / 'test' / 'cat'} holds no images" in capfd.readouterr().err
    (root / "train" / "zebra").mkdir()
    (root / "train" / "zebra" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"never sees in training.*Received: dataset=folder:"):
        data.dataset_info(f"folder:{root}")
    with pytest.raises(ValueError, match=str(root / "train" / "zebra")):
        data.make_dataset(f"folder:{root}", "train", training=True, batch_size=2, image_size=32)


def test_nested_folders_are_named(cifar_small, tmp_path, capfd):
    """Images in a sub-folder of a class folder are not read: the sub-folder is named."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    nested = root / "train" / "cat" / "more"
    nested.mkdir()
    for image in sorted((cifar_small / "train" / "cat").iterdir())[1:3]:
        (nested / image.name).symlink_to(image.resolve())
    assert data.dataset_info(f"folder:{root}").num_train_examples == 10
    err = capfd.readouterr().err
    assert "ignoring 1 sub-folder(s) of class folders" in err and str(nested) in err
    # The calibration/evaluation reader says the same.
    data.image_source(f"folder:{root}", "calibration", image_size=32, num_images=1)
    assert str(nested) in capfd.readouterr().err


def test_class_of_corrupt_files_is_refused(cifar_small, tmp_path, capfd):
    """A training class whose files all fail to decode is refused (naming its folder); in
    the evaluation split it is a warning."""
    root = make_subset(cifar_small, tmp_path / "data", 2)
    for split in ("train", "test"):
        for image in sorted((root / split / "cat").iterdir()):
            _replace(image, image.resolve().read_bytes()[:300])  # truncated in the header
    with pytest.raises(ValueError, match="no image of .*can be read and decoded") as info:
        data.dataset_info(f"folder:{root}")
    assert str(root / "train" / "cat") in str(info.value)
    shutil.rmtree(root / "train" / "cat")
    shutil.copytree(cifar_small / "train" / "cat", root / "train" / "cat")
    assert data.dataset_info(f"folder:{root}").num_eval_examples == 20
    err = capfd.readouterr().err
    assert f"can be read and decoded: {root / 'test' / 'cat'}" in err


def test_unreadable_files_are_not_called_corrupt(cifar_small, tmp_path, capfd):
    """Files that cannot be read are told apart from files that do not decode. The tests run
    as root, for whom chmod 000 blocks nothing: the unreadable files are a link to
    /proc/self/mem (every read fails with an I/O error) and a link to nowhere.

    Asserted on what the library returns (`check_dataset`'s report), not on the pipeline's
    warnings: a training pipeline that has delivered the images asked of it may not have
    reached a bad file yet, and its lines come from TensorFlow's runtime (issue 23, item 17:
    that made this test flaky under load)."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    cat = root / "train" / "cat"
    (cat / "io_error.jpg").symlink_to("/proc/self/mem")
    (cat / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    _replace(cat / "broken.jpg", b"<html>404</html>")
    capfd.readouterr()
    ds = data.make_dataset(
        f"folder:{root}", "train", training=True, batch_size=1, image_size=32, cache=False
    )
    assert len(list(ds.take(10))) == 10
    err = capfd.readouterr().err  # the listing's warning is printed before it returns
    assert f"skipping 1 entr(ies) of {root / 'train'} that cannot be read" in err
    assert str(cat / "dangling.jpg") in err
    report = check.check_dataset(f"folder:{root}")
    assert report.unreadable == [str(cat / "io_error.jpg")]
    assert report.undecodable == [str(cat / "broken.jpg")]
    assert report.decoded == {"train": 10, "eval": 10} and not report.ok
    assert len(report.problems) == 1 and str(cat / "dangling.jpg") in report.problems[0]
    # The calibration/evaluation reader gives the operating system's reason.
    source = data.image_source(f"folder:{root}/train", "eval", image_size=32, num_images=20)
    assert sum(len(x) for x, _ in source.batches) == 10
    err = capfd.readouterr().err
    assert f"skipping {cat / 'io_error.jpg'}: cannot be read" in err and "Input/output" in err
    assert f"skipping {cat / 'broken.jpg'}: it is corrupt" in err


def test_hidden_entries_are_skipped_everywhere_and_checked(cifar_small, tmp_path, capfd):
    """Hidden entries (names starting with '.') are no part of a data set, in every listing:
    a hidden folder in train/ is not a class (before: train/.thumbs/ made 11 classes of 10,
    and an empty .ipynb_checkpoints/ made training refuse to start), hidden files are not
    images, and `--check` names them as skipped, not as errors (issue 23, item 3)."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    thumbs = root / "train" / ".thumbs"
    thumbs.mkdir()
    shutil.copy(next((root / "train" / "cat").iterdir()), thumbs / "cat.jpg")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "test" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "dog" / "._dog.jpg").write_bytes(b"\0\5\26\7 AppleDouble")
    capfd.readouterr()
    info = data.dataset_info(f"folder:{root}")
    assert info.class_names == tuple(CIFAR_CLASSES)
    assert (info.num_train_examples, info.num_eval_examples) == (10, 10)
    ds = data.make_dataset(
        f"folder:{root}", "train", training=True, batch_size=10, image_size=32, repeat=False
    )
    assert sum(int(y.shape[0]) for _, y in ds) == 10
    # The calibration and evaluation listing skips the same entries.
    source = data.image_source(f"folder:{root}", "calibration", image_size=32, num_images=50)
    assert source.class_names == tuple(CIFAR_CLASSES)
    assert sum(len(x) for x, _ in source.batches) == 10
    arrays_of_split = data.image_source(
        f"folder:{root}/train", "eval", image_size=32, num_images=50
    )
    assert sum(len(x) for x, _ in arrays_of_split.batches) == 10
    assert ".thumbs" not in capfd.readouterr().err  # skipped without a word
    report = check.check_dataset(f"folder:{root}")
    assert report.ok and report.decoded == {"train": 10, "eval": 10}
    hidden = {str(thumbs), str(root / "train" / ".ipynb_checkpoints")}
    hidden |= {str(root / "test" / ".ipynb_checkpoints")}
    hidden |= {str(root / "train" / "dog" / n) for n in (".DS_Store", "._dog.jpg")}
    assert set(report.hidden) == hidden
    assert check.main([f"folder:{root}", "--check"]) == 0
    out = capfd.readouterr().out
    assert "5 hidden entr(ies) skipped (names starting with '.'):" in out and str(thumbs) in out


def test_no_libjpeg_line_for_truncated_jpegs(cifar_small, tmp_path, capfd):
    """A JPEG cut inside its header made libjpeg print "Improper call to JPEG library in
    state 201" on stderr, beside our warning: now only the warning names it."""
    root = make_subset(cifar_small, tmp_path / "data", 1)
    good = next((root / "train" / "dog").iterdir()).resolve().read_bytes()
    for split in ("train", "test"):
        _replace(root / split / "dog" / "truncated.jpg", good[: len(good) // 2])
        _replace(root / split / "dog" / "garbage.jpg", good[:20] + bytes(range(256)) * 2)
    capfd.readouterr()
    for image_size, cache in ((32, True), (72, False)):  # decode, and decode-the-crop-only
        ds = data.make_dataset(
            f"folder:{root}",
            "train",
            training=True,
            batch_size=1,
            image_size=image_size,
            cache=cache,
            repeat=False,
        )
        assert sum(1 for _ in ds) == 10
    source = data.image_source(f"folder:{root}", "eval", image_size=32, num_images=20)
    assert sum(len(x) for x, _ in source.batches) == 10
    err = capfd.readouterr().err
    assert "truncated.jpg" in err and "garbage.jpg" in err
    assert "JPEG library" not in err, err


# ------------------------------------------------------------------------------------------------
# TFDS (offline: a builder of our own over the CIFAR subset)


class GhostnetTestImages(tfds.core.GeneratorBasedBuilder):
    """10 classes of CIFAR-10 JPEGs from ``SOURCE`` (set by the fixture)."""

    VERSION = tfds.core.Version("1.0.0")
    SOURCE = None

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=CIFAR_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        root = pathlib.Path(self.SOURCE)
        return {
            "train": self._generate_examples(root / "train"),
            "test": self._generate_examples(root / "test"),
        }

    def _generate_examples(self, folder):
        for path in sorted(folder.glob("*/*.jpg")):
            yield f"{path.parent.name}/{path.name}", {"image": str(path), "label": path.parent.name}


@pytest.fixture(scope="module")
def tfds_dir(cifar_small, tmp_path_factory):
    GhostnetTestImages.SOURCE = str(cifar_small)
    return str(tmp_path_factory.mktemp("tfds"))


def test_tfds_dataset(tfds_dir, cifar_small):
    info = data.dataset_info("ghostnet_test_images", data_dir=tfds_dir)
    assert info.class_names == tuple(CIFAR_CLASSES)
    assert (info.train_split, info.eval_split) == ("train", "test")
    assert (info.num_train_examples, info.num_eval_examples) == (40, 20)

    # Every eval image is one of the test files of its class.
    originals, original_labels = _tf_load(cifar_small / "test", 2)
    by_class = {}
    for image, label in zip(originals, original_labels, strict=True):
        by_class.setdefault(int(label), []).append(image)
    ds = data.make_dataset(
        "ghostnet_test_images",
        "eval",
        training=False,
        batch_size=8,
        image_size=32,
        data_dir=tfds_dir,
        one_hot=False,
    )
    images, labels = _all(ds)
    assert images.shape == (20, 32, 32, 3) and labels.dtype == np.int32
    for image, label in zip(images, labels, strict=True):
        assert min(np.abs(image - o).max() for o in by_class[int(label)]) <= 1.5

    def train(seed, context=None):
        ds = data.make_dataset(
            "ghostnet_test_images",
            "train",
            training=True,
            batch_size=8,
            image_size=32,
            data_dir=tfds_dir,
            seed=seed,
            input_context=context,
        )
        return _all(ds.take(2))

    first, first_labels = train(5)
    assert first.shape == (16, 32, 32, 3) and first_labels.shape == (16, 10)
    again, again_labels = train(5)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_labels, again_labels)

    # Two input pipelines read disjoint halves.
    halves = []
    for i in range(2):
        ds = data.make_dataset(
            "ghostnet_test_images",
            "eval",
            training=False,
            batch_size=32,
            image_size=32,
            data_dir=tfds_dir,
            input_context=tf.distribute.InputContext(2, i, 2),
        )
        halves.append({_digest(x) for x in _all(ds)[0]})
    assert len(halves[0]) == len(halves[1]) == 10 and not halves[0] & halves[1]
    assert halves[0] | halves[1] == {_digest(x) for x in images}


def test_module_does_not_import_keras():
    """The data package also runs in the tf_keras (TF_USE_LEGACY_KERAS=1) QAT subprocess: it
    must not pull in Keras 3 or our models there. The package ``ghostnet_keras`` itself (whose
    ``__init__`` builds the Keras 3 model library) is stood in for by a bare package, so that
    this checks what the data package imports."""
    code = (
        "import sys, types; "
        "package = types.ModuleType('ghostnet_keras'); package.__path__ = ['ghostnet_keras']; "
        "sys.modules['ghostnet_keras'] = package; "
        "import ghostnet_keras.data; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'ghostnet_keras') "
        "and not m.startswith('ghostnet_keras.data')))"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    last = out.stdout.strip().splitlines()[-1]
    # At most the shared constants besides the data modules: no Keras, no model module (the
    # package loads lazily, so the data modules may not even need the constants yet).
    assert set(ast.literal_eval(last)) <= {"ghostnet_keras", "ghostnet_keras.constants"}, last


def test_data_package_imports_only_downwards():
    """The layers: models <- data <- training / tflite. The data package imports TensorFlow,
    NumPy, absl, Pillow (where TensorFlow is missing), the standard library, its own modules
    and ghostnet_keras's shared constants, extras and command-line start (docs/architecture.md's
    table); never Keras, a model module, training/ or tflite/ (read from the source, so that a
    lazy import inside a function counts too)."""

    package = pathlib.Path(data.__file__).parent
    allowed = {"tensorflow", "numpy", "absl", "tensorflow_datasets", "PIL"}
    shared = {
        "ghostnet_keras.cli",
        "ghostnet_keras.constants",
        "ghostnet_keras.extras",
    }
    graph = {}
    for path in sorted(package.glob("*.py")):
        module = "ghostnet_keras.data" + ("" if path.stem == "__init__" else f".{path.stem}")
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "ghostnet_keras":
                    assert name.startswith("ghostnet_keras.data") or name in shared, (path, name)
                    if name.startswith("ghostnet_keras.data"):
                        graph[module].add(name)
                else:
                    assert top in allowed or top in sys.stdlib_module_names, (path, name)

    # No import circle between its modules (only the package's __init__ imports upwards).
    def visit(module, stack):
        assert module not in stack, f"import circle: {' -> '.join([*stack, module])}"
        for target in graph.get(module, ()):
            visit(target, [*stack, module])

    for module in graph:
        if module != "ghostnet_keras.data":
            visit(module, [])
