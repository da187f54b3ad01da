"""Input pipelines for training and evaluation: TFDS data sets and image folders on `tf.data`.

Pure TensorFlow + tensorflow-datasets (no Keras import): the same pipeline feeds the Keras 3
training script, the TFLite calibration/evaluation code and the tf_keras QAT subprocess.

    info = dataset_info("folder:/data/flowers")
    train = make_dataset("folder:/data/flowers", "train", training=True, batch_size=64)
    val = make_dataset("folder:/data/flowers", "eval", training=False, batch_size=64)

Images come out as float32 RGB in 0-255 (the models normalise in their graph), labels one-hot
float32 (so label smoothing works) or int32. See docs/data.md for the augmentation, the folder
layout, corrupt files, ImageNet's manual download and sharding.
"""

import dataclasses
import difflib
import math
import os
import re
import sys

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

__all__ = [
    "DataInfo",
    "DatasetSpec",
    "dataset_info",
    "eval_transform",
    "make_dataset",
    "parse_dataset",
    "parse_randaugment",
]

AUTOTUNE = tf.data.AUTOTUNE

# File name endings listed from an image folder; anything else is skipped with a warning.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
TRAIN_FOLDERS = ("train",)
EVAL_FOLDERS = ("val", "validation", "test")
# Data sets whose decoded images take less than this are cached in memory (cache=None).
AUTO_CACHE_BYTES = 1 << 30
# Training crops: Inception-style random-resized-crop for ImageNet-size inputs.
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
# Inputs of at most this size (CIFAR's 32x32) use pad-and-random-crop instead.
SMALL_IMAGE_SIZE = 64
COLOR_JITTER = 0.4
IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")

_WARNED = set()  # folders whose non-image files were already reported
_LISTINGS = {}  # the last folder listings, see _list_folder
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.+-]+)?(:[0-9*]+\.[0-9*]+\.[0-9*]+)?$")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``--dataset`` value.

    Attributes:
        kind: ``"tfds"`` or ``"folder"``.
        name: the TFDS name (with ``/config`` and ``:version`` if given), or the folder path.
        path: the folder (``kind == "folder"``), else None.
        spec: the string it was parsed from.
    """

    kind: str
    name: str
    path: str | None
    spec: str

    def __str__(self):
        return self.spec


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a training script needs to know about a data set before building the model."""

    num_classes: int
    class_names: tuple
    train_split: str
    eval_split: str
    num_train_examples: int
    num_eval_examples: int


def _error(message, spec):
    return ValueError(f"{message} Received: dataset={spec}")


def parse_dataset(spec):
    """Parses a data set spec: a TFDS name (``cifar10``, ``imagenet2012``,
    ``imagenette/160px-v2``, optionally ``:version``) or ``folder:PATH``.

    Raises:
        ValueError: for an empty spec, a malformed name or a name TFDS does not know.
    """
    if isinstance(spec, DatasetSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise _error(
            "`dataset` must be a TFDS name such as 'cifar10' or 'folder:PATH'.", repr(spec)
        )
    spec = spec.strip()
    if spec.startswith("folder:"):
        path = spec[len("folder:") :]
        if not path:
            raise _error("`folder:` needs a path, as in 'folder:/data/flowers'.", spec)
        return DatasetSpec("folder", os.path.expanduser(path), os.path.expanduser(path), spec)
    if not _TFDS_NAME.match(spec):
        raise _error(
            "`dataset` must be a TFDS name (lower case, optionally 'name/config:1.0.0') or "
            "'folder:PATH' for train/<class>/* and val/<class>/* image folders.",
            spec,
        )
    base = spec.split(":")[0].split("/")[0]
    try:
        tfds.builder_cls(base)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(base, tfds.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise _error(
            f"Unknown dataset {base!r}: not a TensorFlow Datasets name.{hint} For your own "
            "images use 'folder:PATH'.",
            spec,
        ) from None
    return DatasetSpec("tfds", spec, None, spec)


# --------------------------------------------------------------------------------------------
# Image folders


def _folder_splits(spec):
    root = spec.path
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise _error(
            f"The image folder {root} {what} (expected {root}/train/<class>/* and "
            f"{root}/val/<class>/* or {root}/test/<class>/*).",
            spec,
        )
    train = next((s for s in TRAIN_FOLDERS if os.path.isdir(os.path.join(root, s))), None)
    if train is None:
        raise _error(
            f"The image folder {root} has no train/ sub-folder (expected {root}/train/<class>/* "
            f"and {root}/val/<class>/* or {root}/test/<class>/*).",
            spec,
        )
    evals = next((s for s in EVAL_FOLDERS if os.path.isdir(os.path.join(root, s))), None)
    if evals is None:
        raise _error(
            f"The image folder {root} has no evaluation split: add {root}/val/<class>/* (or "
            f"test/) with the same class folders as {root}/{train}/.",
            spec,
        )
    return train, evals


def _list_folder(spec, split, class_names=None):
    """The image files of ``root/split/<class>/*`` in sorted order, their labels and the
    class names (sorted sub-folder names). Files that are not images by name are skipped
    with one warning."""
    split_dir = os.path.join(spec.path, split)
    try:
        found = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
        # Listing ImageNet takes seconds and a training run asks several times: the listing
        # is kept while no class folder changes (adding or removing a file changes its mtime).
        stamp = tuple(os.stat(os.path.join(split_dir, n)).st_mtime_ns for n in found)
        key = (split_dir, tuple(found), stamp, class_names and tuple(class_names))
        if key not in _LISTINGS:
            if len(_LISTINGS) >= 4:
                del _LISTINGS[next(iter(_LISTINGS))]
            _LISTINGS[key] = _scan_classes(spec, split_dir, found, class_names)
    except OSError as e:
        raise _error(f"Cannot read {e.filename or split_dir}: {e.strerror}.", spec) from None
    paths, labels, class_names = _LISTINGS[key]
    return list(paths), list(labels), class_names


def _scan_classes(spec, split_dir, found, class_names):
    if class_names is None:
        class_names = found
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise _error(
                f"{split_dir} has class folders that train/ does not have: "
                f"{', '.join(unknown[:5])}.",
                spec,
            )
    index = {name: i for i, name in enumerate(class_names)}
    paths, labels, skipped = [], [], []
    for name in found:
        class_dir = os.path.join(split_dir, name)
        for entry in sorted(os.scandir(class_dir), key=lambda e: e.name):
            if not entry.is_file():
                continue
            if entry.name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(entry.path)
                labels.append(index[name])
            else:
                skipped.append(entry.path)
    if skipped and split_dir not in _WARNED:
        _WARNED.add(split_dir)
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        logging.warning(
            "Skipping %d file(s) of %s that are not images by name (%s): %s",
            len(skipped),
            split_dir,
            "/".join(IMAGE_EXTENSIONS),
            shown,
        )
    if not paths:
        raise _error(
            f"{split_dir} holds no images: expected {split_dir}/<class>/*.jpg (or .png, .gif, "
            ".bmp, .webp), one sub-folder per class.",
            spec,
        )
    return paths, labels, tuple(class_names)


# --------------------------------------------------------------------------------------------
# TFDS


def _tfds_builder(spec, data_dir):
    try:
        return tfds.builder(spec.name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
        raise _error(f"TFDS cannot build {spec.name!r}: {str(e).splitlines()[0]}", spec) from None


def _manual_dir(builder):
    return os.path.join(builder.data_dir_root, "downloads", "manual")


def _prepare(builder, spec):
    """Downloads and prepares a TFDS data set unless it is ready; checks manual downloads."""
    if builder.is_prepared():
        return
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        manual = _manual_dir(builder)
        if builder.name == "imagenet2012":
            missing = [a for a in IMAGENET_ARCHIVES if not os.path.exists(os.path.join(manual, a))]
            if missing:
                raise _error(
                    f"imagenet2012 must be downloaded by hand: put {' and '.join(missing)} "
                    f"(from https://image-net.org/download-images, after registering) in "
                    f"{manual}/ ; the first run then prepares the data set in "
                    f"{builder.data_dir_root}/imagenet2012/ (this takes hours).",
                    spec,
                )
        elif not os.path.isdir(manual) or not os.listdir(manual):
            instructions = " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
            raise _error(
                f"{builder.name} must be downloaded by hand into {manual}/ : {instructions}",
                spec,
            )
    logging.info("Preparing %s in %s", builder.name, builder.data_dir_root)
    builder.download_and_prepare()


def _tfds_splits(builder, spec):
    splits = builder.info.splits
    if "train" not in splits:
        raise _error(f"{builder.name} has no 'train' split (it has {sorted(splits)}).", spec)
    evals = next((s for s in ("validation", "test") if s in splits), None)
    if evals is None:
        raise _error(
            f"{builder.name} has no 'validation' or 'test' split (it has {sorted(splits)}).", spec
        )
    return "train", evals


def _tfds_keys(builder, spec):
    """The image and label feature names of a TFDS classification data set."""
    keys = builder.info.supervised_keys
    features = dict(builder.info.features.items())
    if keys and len(keys) == 2 and isinstance(keys[0], str):
        image_key, label_key = keys
    else:
        image_key, label_key = "image", "label"
    if not isinstance(features.get(image_key), tfds.features.Image) or not isinstance(
        features.get(label_key), tfds.features.ClassLabel
    ):
        raise _error(
            f"{builder.name} is not an image classification data set (it needs an Image and a "
            "ClassLabel feature).",
            spec,
        )
    return image_key, label_key


# --------------------------------------------------------------------------------------------
# Info


def dataset_info(spec, data_dir=None):
    """Class names, splits and sizes of a data set. For TFDS names this downloads and prepares
    the data set in ``data_dir`` (TFDS's default, ``~/tensorflow_datasets``, if None) on first
    use; ``imagenet2012`` needs its archives in ``<data_dir>/downloads/manual/`` first.

    Raises:
        ValueError: for a bad spec, a missing or empty folder, a folder without an evaluation
            split, or missing manual downloads.
    """
    spec = parse_dataset(spec)
    if spec.kind == "folder":
        train, evals = _folder_splits(spec)
        train_paths, _, class_names = _list_folder(spec, train)
        eval_paths, _, _ = _list_folder(spec, evals, class_names)
        return DataInfo(
            len(class_names), class_names, train, evals, len(train_paths), len(eval_paths)
        )
    builder = _tfds_builder(spec, data_dir)
    _prepare(builder, spec)
    train, evals = _tfds_splits(builder, spec)
    _, label_key = _tfds_keys(builder, spec)
    names = tuple(builder.info.features[label_key].names)
    splits = builder.info.splits
    return DataInfo(
        len(names), names, train, evals, splits[train].num_examples, splits[evals].num_examples
    )


# --------------------------------------------------------------------------------------------
# Decoding


def _robust_map(ds, fn, fallback, deterministic):
    """Maps ``(name, source, label, seed)`` to ``(fn(source, seed), label)``, dropping the
    elements where ``fn`` fails (a corrupt or non-image file) with a warning naming them.

    Each element runs in its own one-element dataset with ``ignore_errors``, so that a failure
    is seen next to the file name (tf.data's own ignore_errors cannot name the file)."""

    def one(name, source, label, seed):
        decoded = tf.data.Dataset.from_tensors((source, seed)).map(lambda s, r: (fn(s, r), True))
        failed = tf.data.Dataset.from_tensors((fallback, False))
        return (
            decoded.ignore_errors()
            .concatenate(failed)
            .take(1)
            .map(lambda image, ok: (name, image, label, ok))
        )

    def check(name, image, label, ok):
        def warn():
            tf.print(
                "WARNING: skipping",
                name,
                "- corrupt, truncated or not a JPEG, PNG, GIF, BMP or WebP image",
                output_stream=sys.stderr,
            )
            return ok

        return image, label, tf.cond(ok, lambda: ok, warn)

    ds = ds.interleave(
        one,
        # Up to this many files decode at once (parallelism is capped by the cycle length).
        cycle_length=max(16, 2 * (os.cpu_count() or 1)),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    ds = ds.map(check).filter(lambda image, label, ok: ok)
    return ds.map(lambda image, label, ok: (image, label))


def _decode(contents):
    """Decodes any supported image to uint8 RGB [H, W, 3] (first frame of a GIF)."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


# --------------------------------------------------------------------------------------------
# Transforms


def _resize(image, size, antialias=False):
    return tf.image.resize(image, size, method="bilinear", antialias=antialias)


def eval_transform(image, image_size=224, crop_fraction=0.875):
    """The evaluation transform: float32 [image_size, image_size, 3] from an [H, W, 3] image.

    The shorter side is resized (bilinear, antialiased) to ``floor(image_size / crop_fraction)``
    (256 for 224 at 0.875) and the central ``image_size`` square is cut out, as in timm's and
    torchvision's ImageNet evaluation. Images whose shorter side is already at most
    ``image_size`` (CIFAR's 32x32) are just resized to ``image_size`` x ``image_size``.
    """
    image = tf.convert_to_tensor(image)
    if not 0 < crop_fraction <= 1:
        raise ValueError(
            f"`crop_fraction` must be in (0, 1]. Received: crop_fraction={crop_fraction}"
        )
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)

    def plain():
        return _resize(image, [image_size, image_size], antialias=True)

    def resize_crop():
        # torchvision's Resize(int): the shorter side becomes `target`, the longer one
        # int(target * long / short).
        target = math.floor(image_size / crop_fraction)
        new_h = tf.where(height <= width, target, tf.cast(target * height // short, tf.int32))
        new_w = tf.where(height <= width, tf.cast(target * width // short, tf.int32), target)
        resized = _resize(image, [new_h, new_w], antialias=True)
        top = (new_h - image_size) // 2
        left = (new_w - image_size) // 2
        return resized[top : top + image_size, left : left + image_size]

    out = tf.cond(short <= image_size, plain, resize_crop)
    out.set_shape([image_size, image_size, 3])
    return out


def _gray(image):
    return tf.tensordot(image, tf.constant([0.299, 0.587, 0.114]), axes=1)[..., None]


def _color_jitter(image, seed, strength):
    """torchvision's ColorJitter(b, c, s) on a float 0-255 image: brightness, contrast and
    saturation factors drawn from [1 - strength, 1 + strength], applied in that order."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    factors = [
        tf.random.stateless_uniform([], seeds[i], 1 - strength, 1 + strength) for i in range(3)
    ]
    image = tf.clip_by_value(image * factors[0], 0.0, 255.0)
    mean = tf.reduce_mean(_gray(image))
    image = tf.clip_by_value((image - mean) * factors[1] + mean, 0.0, 255.0)
    gray = _gray(image)
    return tf.clip_by_value((image - gray) * factors[2] + gray, 0.0, 255.0)


def _crop_window(shape, seed):
    """An Inception-style random crop window (offset, size) of an image of ``shape``: area
    fraction in CROP_AREA_RANGE, aspect ratio in CROP_ASPECT_RANGE (whole image after 10
    failed attempts)."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def _train_transform(image_size, color_jitter, randaugment):
    """Returns fn(source, seed) -> float32 [S, S, 3], ``source`` an encoded image (string) or a
    decoded uint8 image."""
    small = image_size <= SMALL_IMAGE_SIZE
    pad = image_size // 8

    def crop_resize(source, seed):
        if source.dtype == tf.string:
            if small:
                image = _decode(source)
            else:
                # JPEG: decode only the crop window, the main saving of ImageNet pipelines.
                def jpeg():
                    shape = tf.image.extract_jpeg_shape(source)
                    begin, size = _crop_window(shape, seed)
                    window = tf.stack([begin[0], begin[1], size[0], size[1]])
                    return tf.image.decode_and_crop_jpeg(source, window, channels=3)

                def other():
                    image = _decode(source)
                    begin, size = _crop_window(tf.shape(image), seed)
                    return tf.slice(image, begin, size)

                crop = tf.cond(tf.io.is_jpeg(source), jpeg, other)
                crop.set_shape([None, None, 3])
                return _resize(crop, [image_size, image_size])
        else:
            image = source
            if not small:
                begin, size = _crop_window(tf.shape(image), seed)
                return _resize(tf.slice(image, begin, size), [image_size, image_size])
        # Small inputs (CIFAR): resize to the input size, pad by 1/8 and cut a random square.
        image = tf.cast(image, tf.float32)
        shape = tf.shape(image)
        image = tf.cond(
            tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size)),
            lambda: image,
            lambda: _resize(image, [image_size, image_size], antialias=True),
        )
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        return tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed)

    def transform(source, seed):
        seeds = tf.random.experimental.stateless_split(seed, 4)
        image = crop_resize(source, seeds[0])
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        if randaugment:
            image = _randaugment(image, seeds[2], *randaugment)
        elif color_jitter:
            image = _color_jitter(image, seeds[3], color_jitter)
        image.set_shape([image_size, image_size, 3])
        return image

    return transform


# --------------------------------------------------------------------------------------------
# Pipelines


def _estimate_bytes(sources, count):
    """Decoded uint8 bytes of ``count`` images, from the sizes of a few encoded ``sources``."""
    pixels = []
    for contents in sources:
        contents = tf.convert_to_tensor(contents)
        if tf.io.is_jpeg(contents):
            shape = tf.image.extract_jpeg_shape(contents)
        else:
            try:
                shape = tf.shape(_decode(contents))
            except tf.errors.InvalidArgumentError:
                continue
        pixels.append(int(shape[0]) * int(shape[1]) * 3)
    if not pixels:
        return 0
    return sum(pixels) // len(pixels) * count


def _folder_files(spec, info, split, input_context):
    folder = info.train_split if split == "train" else info.eval_split
    class_names = None if split == "train" else info.class_names
    paths, labels, _ = _list_folder(spec, folder, class_names)
    if input_context and input_context.num_input_pipelines > 1:
        # Every n-th file: each worker sees all classes in the same proportions.
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        paths, labels = paths[i::n], labels[i::n]
    return paths, labels


def _folder_source(paths, labels, shuffle, seed):
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if shuffle:
        # Shuffling file names is cheap: the whole list, before any file is read.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # Files are read where they are decoded (in _robust_map): a read error skips one file too.
    return ds.map(lambda path, label: (path, path, label))


def _tfds_source(spec, info, split, input_context, data_dir, shuffle, seed):
    builder = _tfds_builder(spec, data_dir)
    _prepare(builder, spec)
    image_key, label_key = _tfds_keys(builder, spec)
    name = info.train_split if split == "train" else info.eval_split
    count = builder.info.splits[name].num_examples
    if input_context and input_context.num_input_pipelines > 1:
        # Record-level shards, so that any number of workers works with any number of files.
        parts = tfds.even_splits(name, input_context.num_input_pipelines)
        name = parts[input_context.input_pipeline_id]
        count = builder.info.splits[name].num_examples
    ds = builder.as_dataset(
        split=name,
        shuffle_files=shuffle,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False, add_tfds_id=True),
    )
    ds = ds.map(
        lambda ex: (ex["tfds_id"], ex[image_key], tf.cast(ex[label_key], tf.int32)),
        num_parallel_calls=AUTOTUNE,
    )
    return ds, count


def make_dataset(
    spec,
    split,
    *,
    training,
    batch_size,
    image_size=224,
    data_dir=None,
    input_context=None,
    seed=None,
    randaugment=None,
    crop_fraction=0.875,
    cache=None,
    one_hot=True,
    num_classes=None,
    repeat=None,
    drop_remainder=None,
    color_jitter=None,
    shuffle_buffer=10_000,
):
    """A batched ``tf.data.Dataset`` of ``(images, labels)``.

    Images are float32 ``[batch, image_size, image_size, 3]`` RGB in 0-255 (the models
    normalise in their graph); labels one-hot float32 ``[batch, num_classes]`` if ``one_hot``
    (label smoothing needs them) else int32 ``[batch]``.

    Args:
        spec: a TFDS name or ``folder:PATH`` (see `parse_dataset`), or a `DatasetSpec`.
        split: ``"train"`` or ``"eval"`` (the folder's val/ or test/, TFDS's validation or
            test split).
        training: random augmentation and shuffling (else the deterministic `eval_transform`).
        batch_size: the batch size of THIS input pipeline: the per-replica batch size under
            ``strategy.distribute_datasets_from_function`` (pass
            ``input_context.get_per_replica_batch_size(global_batch_size)``), the global one
            when feeding ``model.fit`` directly.
        image_size: output height and width.
        data_dir: TFDS data directory (TFDS's default if None).
        input_context: a `tf.distribute.InputContext`: this pipeline reads only its shard
            (every ``num_input_pipelines``-th file of a folder, an even record range of TFDS).
        seed: makes shuffling and augmentation reproducible (same seed, same batches).
        randaugment: None/False (off, the paper's setup), True (2 ops, magnitude 9), an int
            magnitude, ``(num_ops, magnitude)`` or a string such as ``"2,9"`` / ``"rand-m9-n2"``.
            Replaces the colour jitter when on.
        crop_fraction: the evaluation centre crop (0.875: resize to 256, crop 224).
        cache: keep decoded images in memory after the first epoch. None: only if they take
            less than 1 GB (estimated from the first images).
        one_hot: one-hot float32 labels, else int32 class indices.
        num_classes: one-hot depth (the data set's class count if None).
        repeat: repeat forever (default: for training only; fit then needs
            ``steps_per_epoch``).
        drop_remainder: drop the last partial batch (default: for training only).
        color_jitter: brightness/contrast/saturation strength of training; None: 0.4 (the
            MobileNetV3/GhostNet ImageNet setup) above 64 pixels, 0 (off, the usual CIFAR
            setup) for small inputs.
        shuffle_buffer: records in the shuffle buffer of TFDS data (folders shuffle their
            whole file list; cached data sets their whole content).
    """
    spec = parse_dataset(spec)
    if split not in ("train", "eval"):
        raise ValueError(f"`split` must be 'train' or 'eval'. Received: split={split!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"`image_size` must be an int >= 8. Received: image_size={image_size!r}")
    if not 0 < crop_fraction <= 1:
        raise ValueError(
            f"`crop_fraction` must be in (0, 1]. Received: crop_fraction={crop_fraction}"
        )
    if color_jitter is None:
        color_jitter = 0.0 if image_size <= SMALL_IMAGE_SIZE else COLOR_JITTER
    if not 0 <= color_jitter < 1:
        raise ValueError(f"`color_jitter` must be in [0, 1). Received: color_jitter={color_jitter}")
    randaugment = parse_randaugment(randaugment)
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder

    info = dataset_info(spec, data_dir)
    num_classes = num_classes or info.num_classes
    if spec.kind == "folder":
        paths, labels = _folder_files(spec, info, split, input_context)
        count = len(paths)
        if cache is None:
            sample = [tf.io.read_file(p) for p in paths[:: max(1, count // 8)][:8]]
            cache = _estimate_bytes(sample, count) < AUTO_CACHE_BYTES
        ds = _folder_source(paths, labels, training and not cache, seed)
        read = tf.io.read_file
    else:
        ds, count = _tfds_source(spec, info, split, input_context, data_dir, training, seed)
        if cache is None:
            sample = [contents for _, contents, _ in ds.take(8)]
            cache = _estimate_bytes(sample, count) < AUTO_CACHE_BYTES
        read = tf.identity
    deterministic = seed is not None or not training
    no_seed = tf.zeros([2], tf.int64)

    def label_fn(image, label):
        return image, tf.one_hot(label, num_classes, dtype=tf.float32) if one_hot else label

    if cache:
        # Decoded uint8 images in memory; later epochs only crop, flip and jitter.
        ds = ds.map(lambda name, source, label: (name, source, label, no_seed))
        empty = tf.zeros([1, 1, 3], tf.uint8)
        ds = _robust_map(ds, lambda s, r: _decode(read(s)), empty, deterministic).cache()
        if training:
            ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    elif training and spec.kind == "tfds":
        ds = ds.shuffle(min(count, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)

    if training:
        transform = _train_transform(image_size, color_jitter, randaugment)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed).map(lambda r: tf.stack([r, r // 3 + 1]))
        if cache:
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda example, s: (transform(example[0], s), example[1]),
                num_parallel_calls=AUTOTUNE,
                deterministic=deterministic,
            )
        else:
            ds = tf.data.Dataset.zip((ds, seeds)).map(lambda e, s: (e[0], e[1], e[2], s))
            empty = tf.zeros([image_size, image_size, 3])
            ds = _robust_map(ds, lambda src, s: transform(read(src), s), empty, deterministic)
    else:

        def evaluate(source, seed):
            image = source if source.dtype == tf.uint8 else _decode(read(source))
            return eval_transform(image, image_size, crop_fraction)

        if cache:
            ds = ds.map(
                lambda image, label: (evaluate(image, None), label), num_parallel_calls=AUTOTUNE
            )
        else:
            ds = ds.map(lambda name, source, label: (name, source, label, no_seed))
            empty = tf.zeros([image_size, image_size, 3])
            ds = _robust_map(ds, evaluate, empty, deterministic)
    ds = ds.map(label_fn, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if repeat and not training:
        ds = ds.repeat()
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
        # Sharded here already; without an input context tf.distribute may shard by data.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


# --------------------------------------------------------------------------------------------
# RandAugment


def parse_randaugment(value):
    """``(num_ops, magnitude)`` from a ``randaugment`` argument, or None when off."""
    if value is None or value is False or value == "" or value == 0:
        return None
    original = value
    if value is True:
        value = (2, 9)
    elif isinstance(value, int):
        value = (2, value)
    elif isinstance(value, str):
        text = value.strip().lower()
        m = re.fullmatch(r"(\d+),(\d+(?:\.\d+)?)", text)
        if m:
            value = (int(m.group(1)), float(m.group(2)))
        else:
            parts = dict(re.findall(r"-([mn])(\d+(?:\.\d+)?)", text))
            if not text.startswith("rand") or not parts:
                value = None
            else:
                value = (int(float(parts.get("n", 2))), float(parts.get("m", 9)))
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not 1 <= int(value[0]) <= 10
        or not 0 <= float(value[1]) <= 30
    ):
        raise ValueError(
            "`randaugment` must be off (None/False), True, a magnitude, (num_ops, magnitude) or "
            f"a string such as '2,9' or 'rand-m9-n2'. Received: randaugment={original!r}"
        )
    return int(value[0]), float(value[1])


def _blend(image, other, factor):
    return tf.clip_by_value(other + (image - other) * factor, 0.0, 255.0)


def _affine(image, transform):
    """Applies a 2x3 affine map (output -> input pixel coordinates), filling with grey."""
    transform = tf.concat([tf.cast(transform, tf.float32), tf.zeros([2])], 0)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=128.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def _equalize(image):
    """PIL's ImageOps.equalize, channel by channel, on a 0-255 float image."""

    def channel(values):
        values = tf.round(values)
        hist = tf.histogram_fixed_width(values, [0.0, 256.0], nbins=256)
        nonzero = tf.boolean_mask(hist, hist > 0)
        step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

        def apply():
            lut = (tf.cumsum(hist) + step // 2) // tf.maximum(step, 1)
            lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
            return tf.cast(tf.gather(lut, tf.cast(values, tf.int32)), tf.float32)

        return tf.cond(step > 0, apply, lambda: values)

    return tf.stack([channel(image[..., c]) for c in range(3)], -1)


def _randaugment(image, seed, num_ops, magnitude):
    """RandAugment (Cubuk et al. 2020) on a float 0-255 image: ``num_ops`` operations drawn
    uniformly from 14 (identity, autocontrast, equalize, rotate, solarize, colour, posterize,
    contrast, brightness, sharpness, shear x/y, translate x/y), each at ``magnitude`` on the
    paper's 0-10 scale (timm's ranges; geometric and enhancement ops get a random sign)."""
    level = magnitude / 10.0
    size = tf.cast(tf.shape(image)[:2], tf.float32)

    def ops(image, signed):
        angle = signed * 30.0 * level * math.pi / 180.0
        cos, sin = tf.cos(angle), tf.sin(angle)
        cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2
        rotate = [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy]
        enhance = 1.0 + signed * 0.9 * level
        shear = signed * 0.3 * level
        shift = signed * 0.45 * level
        bits = 8 - int(round(level * 4))
        posterize_step = float(2 ** (8 - max(bits, 1)))
        low = tf.reduce_min(image, axis=[0, 1])
        high = tf.reduce_max(image, axis=[0, 1])
        blur = tf.nn.depthwise_conv2d(
            tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"),
            tf.tile(
                tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32)[:, :, None, None] / 13,
                [1, 1, 3, 1],
            ),
            [1, 1, 1, 1],
            "VALID",
        )[0]
        threshold = 256.0 - 256.0 * level
        return [
            lambda: image,
            lambda: tf.where(
                high > low, (image - low) * 255.0 / tf.maximum(high - low, 1e-3), image
            ),
            lambda: _equalize(image),
            lambda: _affine(image, rotate),
            lambda: tf.where(image >= threshold, 255.0 - image, image),
            lambda: _blend(image, _gray(image), enhance),
            lambda: tf.floor(image / posterize_step) * posterize_step,
            lambda: _blend(image, tf.reduce_mean(_gray(image)), enhance),
            lambda: _blend(image, tf.zeros_like(image), enhance),
            lambda: _blend(image, blur, enhance),
            lambda: _affine(image, [1.0, shear, 0.0, 0.0, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, 0.0, shear, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, shift * size[1], 0.0, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, shift * size[0]]),
        ]

    seeds = tf.random.experimental.stateless_split(seed, 2 * num_ops)
    for i in range(num_ops):
        index = tf.random.stateless_uniform([], seeds[2 * i], 0, 14, dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform([], seeds[2 * i + 1]) < 0.5, -1.0, 1.0)
        image = tf.switch_case(index, ops(image, sign))
        image = tf.clip_by_value(image, 0.0, 255.0)
        image.set_shape([None, None, 3])
    return image


# --------------------------------------------------------------------------------------------
# CLI


def main(argv=None):
    """``python -m training.data SPEC [--data_dir DIR] [--check]``: prints what a data set
    holds; ``--check`` decodes every image and names the ones training would skip."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.data", description=main.__doc__)
    parser.add_argument("dataset", help="a TFDS name or folder:PATH")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory")
    parser.add_argument("--check", action="store_true", help="decode every image")
    args = parser.parse_args(argv)
    try:
        info = dataset_info(args.dataset, args.data_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    names = ", ".join(info.class_names[:10]) + (", ..." if info.num_classes > 10 else "")
    print(f"{args.dataset}: {info.num_classes} classes ({names})")
    print(f"  {info.train_split}: {info.num_train_examples} images")
    print(f"  {info.eval_split}: {info.num_eval_examples} images")
    if not args.check:
        return 0
    bad = 0
    for split, expected in (("train", info.num_train_examples), ("eval", info.num_eval_examples)):
        ds = make_dataset(
            args.dataset,
            split,
            training=False,
            batch_size=256,
            image_size=16,
            data_dir=args.data_dir,
            cache=False,
            one_hot=False,
        )
        decoded = sum(int(labels.shape[0]) for _, labels in ds)
        bad += expected - decoded
        print(f"  {split}: {decoded} of {expected} images decode", flush=True)
    if bad:
        print(f"{bad} image(s) cannot be decoded (named above); training skips them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
