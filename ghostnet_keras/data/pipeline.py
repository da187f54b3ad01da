"""The ``tf.data`` input pipelines: batches of decoded, transformed images and their labels,
from an image folder (TensorFlow alone) or a TFDS data set (tensorflow-datasets)."""

import dataclasses
import os
import sys

import tensorflow as tf

import ghostnet_keras.data.folders as folders
import ghostnet_keras.data.tfds_source as tfds_source
import ghostnet_keras.data.transforms as transforms
from ghostnet_keras.constants import CROP_FRACTION
from ghostnet_keras.data.info import dataset_info
from ghostnet_keras.data.randaugment import parse_randaugment
from ghostnet_keras.data.specs import parse_dataset

AUTOTUNE = tf.data.AUTOTUNE
# Data sets whose decoded images take less than this are cached in memory (cache=None).
AUTO_CACHE_BYTES = 1 << 30

# Why a file was skipped, as _robust_map reports it.
UNREADABLE = "cannot be read (a broken link, no permission or an I/O error)"
UNDECODABLE = "is corrupt, truncated or not a JPEG, PNG, GIF, BMP or WebP image"


# The status of an element in _with_status.
STATUS_DECODED, STATUS_UNREADABLE, STATUS_UNDECODABLE = 0, 1, 2


def _with_status(ds, fn, read, fallback, deterministic):
    """Maps ``(name, source, label, seed)`` to ``(name, image, label, status)``: ``image`` is
    ``fn(source, seed)`` and ``status`` is ``STATUS_DECODED``, or ``image`` is ``fallback`` and
    ``status`` says why ``fn`` failed: the source cannot be read (``read(source)`` fails too,
    ``STATUS_UNREADABLE``) or it is not a decodable image (``STATUS_UNDECODABLE``).

    Each element runs in its own one-element dataset with ``ignore_errors``, so that a failure
    is seen next to the file name (tf.data's own ignore_errors cannot name the file)."""

    def readable(source):
        # A data dependency on the read (tf.data prunes control-only dependencies).
        was_read = tf.strings.length(read(source)) >= 0
        return fallback, tf.where(was_read, STATUS_UNDECODABLE, STATUS_UNREADABLE)

    def one(name, source, label, seed):
        # The second dataset only runs when the first one failed, the third when both did.
        decoded = tf.data.Dataset.from_tensors((source, seed)).map(
            lambda s, r: (fn(s, r), tf.constant(STATUS_DECODED))
        )
        undecodable = tf.data.Dataset.from_tensors(source).map(readable)
        unreadable = tf.data.Dataset.from_tensors((fallback, tf.constant(STATUS_UNREADABLE)))
        return (
            decoded.ignore_errors()
            .concatenate(undecodable.ignore_errors())
            .concatenate(unreadable)
            .take(1)
            .map(lambda image, status: (name, image, label, status))
        )

    return ds.interleave(
        one,
        # Up to this many files decode at once (parallelism is capped by the cycle length).
        cycle_length=max(16, 2 * (os.cpu_count() or 1)),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )


def _robust_map(ds, fn, read, fallback, deterministic):
    """Maps ``(name, source, label, seed)`` to ``(fn(source, seed), label)``, dropping the
    elements where ``fn`` fails with a warning that names them and says why (see
    `_with_status`)."""

    def check(name, image, label, status):
        def warn(reason):
            def print_it():
                tf.print("WARNING: skipping", name, "-", reason, output_stream=sys.stderr)
                return False

            return print_it

        branches = {
            STATUS_DECODED: lambda: True,
            STATUS_UNREADABLE: warn(UNREADABLE),
            STATUS_UNDECODABLE: warn(UNDECODABLE),
        }
        ok = tf.switch_case(status, branches, name="skip_warning")
        return image, label, ok

    ds = _with_status(ds, fn, read, fallback, deterministic).map(check)
    ds = ds.filter(lambda image, label, ok: ok)
    return ds.map(lambda image, label, ok: (image, label))


def _estimate_bytes(sources, count):
    """Decoded uint8 bytes of ``count`` images, from the sizes of a few encoded ``sources``."""
    pixels = []
    for contents in sources:
        contents = tf.convert_to_tensor(contents)
        try:
            if tf.io.is_jpeg(contents):
                shape = tf.image.extract_jpeg_shape(transforms.checked(contents))
            else:
                shape = tf.shape(transforms.decode(contents))
        except tf.errors.InvalidArgumentError:
            continue
        pixels.append(int(shape[0]) * int(shape[1]) * 3)
    if not pixels:
        return 0
    return sum(pixels) // len(pixels) * count


def split_statuses(spec, split, data_dir=None):
    """``(name, status)`` of every image of a split (``"train"`` or ``"eval"``), as NumPy
    values in listing order: the file path (a TFDS record's id) and whether it decodes
    (``STATUS_DECODED``), cannot be read (``STATUS_UNREADABLE``) or is not a decodable image
    (``STATUS_UNDECODABLE``). What the pipelines skip, as data rather than as warnings."""
    spec = parse_dataset(spec)
    info = dataset_info(spec, data_dir)
    ds, _, read, _ = _split_source(spec, info, split, cache=False, data_dir=data_dir)
    empty = tf.zeros([1, 1, 3], tf.uint8)
    ds = _with_status(_no_seed(ds), lambda s, r: transforms.decode(read(s)), read, empty, True)
    ds = ds.map(lambda name, image, label, status: (name, status))
    return ds.prefetch(AUTOTUNE).as_numpy_iterator()


def _read_some(paths):
    """The contents of those of ``paths`` that can be read (the pipeline names the others)."""
    contents = []
    for path in paths:
        try:
            contents.append(tf.io.read_file(path))
        except tf.errors.OpError:
            continue
    return contents


def _folder_source(paths, labels, shuffle, seed):
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if shuffle:
        # Shuffling file names is cheap: the whole list, before any file is read.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # Files are read where they are decoded (in _robust_map): a read error skips one file too.
    return ds.map(lambda path, label: (path, path, label))


def _split_source(
    spec, info, split, cache, *, input_context=None, data_dir=None, training=False, seed=None
):
    """``(dataset of (name, source, label), count, read, cache)`` of one split: ``read`` turns
    a source into the encoded image; ``cache`` None is decided here (decoded images under
    ``AUTO_CACHE_BYTES``, estimated from the first few)."""
    name = info.train_split if split == "train" else info.eval_split
    if spec.kind == "folder":
        class_names = None if split == "train" else info.class_names
        paths, labels = folders.split_files(spec, name, class_names, input_context)
        count = len(paths)
        if cache is None:
            sample = _read_some(paths[:: max(1, count // 8)][:8])
            cache = _estimate_bytes(sample, count) < AUTO_CACHE_BYTES
        ds = _folder_source(paths, labels, training and not cache, seed)
        return ds, count, tf.io.read_file, cache
    ds, count = tfds_source.source(spec, name, input_context, data_dir, training, seed)
    if cache is None:
        sample = [contents for _, contents, _ in ds.take(8)]
        cache = _estimate_bytes(sample, count) < AUTO_CACHE_BYTES
    return ds, count, tf.identity, cache


@dataclasses.dataclass(frozen=True)
class _Options:
    """The checked settings of one pipeline (see `make_dataset`)."""

    training: bool
    batch_size: int
    image_size: int
    seed: int | None
    randaugment: object
    crop_fraction: float
    color_jitter: float
    one_hot: bool
    num_classes: int
    repeat: bool
    drop_remainder: bool
    shuffle_buffer: int

    @property
    def deterministic(self):
        return self.seed is not None or not self.training


def _checked_color_jitter(split, batch_size, image_size, crop_fraction, color_jitter):
    """Checks the plain arguments of `make_dataset`; the colour jitter, its default resolved."""
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
        color_jitter = 0.0 if image_size <= transforms.SMALL_IMAGE_SIZE else transforms.COLOR_JITTER
    if not 0 <= color_jitter < 1:
        raise ValueError(f"`color_jitter` must be in [0, 1). Received: color_jitter={color_jitter}")
    return color_jitter


def _no_seed(ds):
    return ds.map(lambda name, source, label: (name, source, label, tf.zeros([2], tf.int64)))


def _decoded_in_memory(ds, read, count, options):
    """The decoded uint8 images, cached in memory (later epochs only crop, flip and jitter),
    reshuffled each epoch for training: ``(image, label)``."""
    empty = tf.zeros([1, 1, 3], tf.uint8)

    def decode(source, seed):
        return transforms.decode(read(source))

    ds = _robust_map(_no_seed(ds), decode, read, empty, options.deterministic).cache()
    if options.training:
        ds = ds.shuffle(count, seed=options.seed, reshuffle_each_iteration=True)
    return ds


def _training_images(ds, read, cached, options):
    """Random augmentation, a new random seed per image: ``(image, label)``, repeated if
    ``options.repeat``."""
    transform = transforms.train_transform(
        options.image_size, options.color_jitter, options.randaugment
    )
    if options.repeat:
        ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=options.seed).map(lambda r: tf.stack([r, r // 3 + 1]))
    if cached:
        return tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, s: (transform(example[0], s), example[1]),
            num_parallel_calls=AUTOTUNE,
            deterministic=options.deterministic,
        )
    ds = tf.data.Dataset.zip((ds, seeds)).map(lambda e, s: (e[0], e[1], e[2], s))
    empty = tf.zeros([options.image_size, options.image_size, 3])
    return _robust_map(
        ds, lambda src, s: transform(read(src), s), read, empty, options.deterministic
    )


def _evaluation_images(ds, read, cached, options):
    """The deterministic evaluation transform (resize, centre crop): ``(image, label)``."""

    def evaluate(source, seed):
        image = source if source.dtype == tf.uint8 else transforms.decode(read(source))
        return transforms.eval_transform(image, options.image_size, options.crop_fraction)

    if cached:
        return ds.map(
            lambda image, label: (evaluate(image, None), label), num_parallel_calls=AUTOTUNE
        )
    empty = tf.zeros([options.image_size, options.image_size, 3])
    return _robust_map(_no_seed(ds), evaluate, read, empty, options.deterministic)


def _batches(ds, options, input_context):
    """Labels (one-hot if asked), batches, the evaluation repeat, and the tf.data options."""

    def label_fn(image, label):
        if options.one_hot:
            return image, tf.one_hot(label, options.num_classes, dtype=tf.float32)
        return image, label

    ds = ds.map(label_fn, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(
        options.batch_size, drop_remainder=options.drop_remainder, num_parallel_calls=AUTOTUNE
    )
    if options.repeat and not options.training:
        ds = ds.repeat()
    tf_options = tf.data.Options()
    tf_options.deterministic = options.deterministic
    if input_context is not None:
        # Sharded here already; without an input context tf.distribute may shard by data.
        policy = tf.data.experimental.AutoShardPolicy.OFF
        tf_options.experimental_distribute.auto_shard_policy = policy
    return ds.with_options(tf_options).prefetch(AUTOTUNE)


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
    crop_fraction=CROP_FRACTION,
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
        crop_fraction: the evaluation centre crop (``CROP_FRACTION``: resize to 256, crop 224).
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
    color_jitter = _checked_color_jitter(split, batch_size, image_size, crop_fraction, color_jitter)
    randaugment = parse_randaugment(randaugment)
    info = dataset_info(spec, data_dir)
    options = _Options(
        training=training,
        batch_size=batch_size,
        image_size=image_size,
        seed=seed,
        randaugment=randaugment,
        crop_fraction=crop_fraction,
        color_jitter=color_jitter,
        one_hot=one_hot,
        num_classes=num_classes or info.num_classes,
        repeat=training if repeat is None else repeat,
        drop_remainder=training if drop_remainder is None else drop_remainder,
        shuffle_buffer=shuffle_buffer,
    )
    ds, count, read, cache = _split_source(
        spec,
        info,
        split,
        cache,
        input_context=input_context,
        data_dir=data_dir,
        training=training,
        seed=seed,
    )
    if cache:
        ds = _decoded_in_memory(ds, read, count, options)
    elif training and spec.kind == "tfds":
        ds = ds.shuffle(min(count, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    if training:
        ds = _training_images(ds, read, cache, options)
    else:
        ds = _evaluation_images(ds, read, cache, options)
    return _batches(ds, options, input_context)
