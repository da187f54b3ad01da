"""The in-memory input of small data sets (`--in_memory`): CIFAR-10 as two tensors.

The folder and TFDS pipelines of `ghostnet_keras.data` read, decode and transform one image at
a time (cached after the first epoch, but still one image per map call). For a data set of
tiny images that fits in memory many times over (CIFAR-10: 50,000 x 32 x 32 x 3 bytes = 154
MB), this module decodes each split once per process (`load_split`, through the data layer's
own evaluation pipeline, so that the pixels are those evaluation sees) and keeps it as one
uint8 tensor. A training step then costs the input pipeline 128 examples out of a shuffle
buffer of the whole split (no reading, no decoding) and one vectorised pad-crop-flip of the
whole batch (`augment_batch`: the same
4-pixel zero padding, random 32x32 crop and horizontal flip as the data layer's small-image
transform, He et al. 2016), and 1.5 MB of float32 pixels per 128 images to copy to the
accelerator.

What the input costs against the step, measured on the 2-core CPU of the project
(`python -m benchmarks.reproduce_cifar --measure_input`), and what that means on a GPU, are
recorded in `benchmarks/results/reproduce_cifar_input.md`.

Without TensorFlow (Keras on JAX, where the GPU machines lent to the project have no
TensorFlow), `array_datasets` is the input instead of `tf.data`: `load_split` decodes with
Pillow (the pixels of TensorFlow's accurate integer DCT; the tf.data input's default fast DCT
differs by a few levels, 1 on average: tests/test_reproduce_cifar.py), both splits are
held as backend tensors on the accelerator, and each training batch is gathered, padded,
cropped and flipped there by the same `pad_crop_flip` as the TensorFlow input's.
"""

import functools

import keras
import numpy as np
from keras import ops

from ghostnet_keras.data import folders
from ghostnet_keras.data.specs import parse_dataset
from training import strategy as strategy_lib

LOAD_BATCH = 1000


@functools.lru_cache(maxsize=4)
def load_split(spec, split, image_size, crop_fraction, data_dir=None):
    """`(images, labels)` of a whole split: uint8 `[n, size, size, 3]` and int32 `[n]`,
    decoded and resized once (the data layer's evaluation transform) and kept for the process
    (the rows of a benchmark share them). Without TensorFlow, `pillow_split`'s."""
    if not strategy_lib.uses_tensorflow():
        return pillow_split(spec, split, image_size, crop_fraction)
    from ghostnet_keras import data

    ds = data.make_dataset(
        spec,
        split,
        training=False,
        batch_size=LOAD_BATCH,
        image_size=image_size,
        data_dir=data_dir,
        crop_fraction=crop_fraction,
        one_hot=False,
        cache=False,
    )
    images, labels = [], []
    for batch_images, batch_labels in ds.as_numpy_iterator():
        images.append(np.clip(np.rint(batch_images), 0, 255).astype(np.uint8))
        labels.append(batch_labels.astype(np.int32))
    return np.concatenate(images), np.concatenate(labels)


def pillow_split(spec, split, image_size, crop_fraction):
    """`load_split` without TensorFlow: the image folder's files in the data layer's order
    (`folders.list_split`), decoded by Pillow. Takes images already `image_size` square and
    whole (`crop_fraction` 1.0: CIFAR's); undecodable files are skipped with a warning, as the
    `tf.data` input skips them.

    Raises:
        ValueError: for a data set that is not an image folder, or images of another size.
    """
    from PIL import Image

    parsed = parse_dataset(spec)
    if parsed.kind != "folder":
        raise ValueError(
            "Without TensorFlow the in-memory input reads image folders (folder:PATH) only. "
            f"Received: dataset={spec!r}"
        )
    info = folders.info(parsed)
    name, class_names = (
        (info.train_split, None) if split == "train" else (info.eval_split, info.class_names)
    )
    paths, labels, _ = folders.list_split(parsed, name, class_names)
    images = np.empty((len(paths), image_size, image_size, 3), np.uint8)
    kept = np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError):
            folders.warn(f"skipped {path}: Pillow cannot decode it")
            continue
        if pixels.shape[:2] != (image_size, image_size) or crop_fraction != 1.0:
            raise ValueError(
                "Without TensorFlow the in-memory input takes images at the run's size, whole "
                f"(no resize or crop): {path} is {pixels.shape[1]}x{pixels.shape[0]}. "
                f"Received: image_size={image_size}, crop_fraction={crop_fraction}"
            )
        images[i], kept[i] = pixels, True
    return images[kept], np.asarray(labels, np.int32)[kept]


def pad_crop_flip(images, rows, cols, flips):
    """Pads a uint8 batch `[b, size, size, 3]` by 1/8 of its size with zeros, cuts each image's
    window at (`rows[i]`, `cols[i]`) (each in `[0, size / 4]`) and flips those with `flips[i]`
    horizontally; float32 0-255 out. Keras ops, so one batch is a few ops on any backend's
    device (the `tf.data` input's `augment_batch` and `array_datasets`' both call it)."""
    size = images.shape[1]
    pad = size // 8
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = ops.arange(size, dtype="int32")[None, :]
    rows = ops.cast(rows, "int32")[:, None] + offsets
    cols = ops.cast(cols, "int32")[:, None] + offsets
    cols = ops.where(ops.expand_dims(flips, 1), ops.flip(cols, axis=1), cols)
    cropped = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)
    cropped = ops.take_along_axis(cropped, cols[:, None, :, None], axis=2)
    return ops.cast(cropped, "float32")


def augment_batch(images, seed=None):
    """A random crop of each image of a uint8 batch padded by 1/8 of its size with zeros, and
    a horizontal flip of half of them (`pad_crop_flip`), drawn by TensorFlow's stateless RNG
    from `seed` (two integers), else its global one. One op per batch, not per image."""
    import tensorflow as tf

    window = 2 * (images.shape[1] // 8) + 1
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3) if seed is not None else None

    def uniform(index, maxval):
        shape = [batch]
        if seed is None:
            return tf.random.uniform(shape, 0, maxval, tf.int32)
        return tf.random.stateless_uniform(shape, seeds[index], 0, maxval, tf.int32)

    return pad_crop_flip(images, uniform(0, window), uniform(1, window), uniform(2, 2) > 0)


def dataset_fns(config, info, crop_fraction, multi_worker=False):
    """`(train_fn, eval_fn)` for `strategy.distribute_datasets_from_function`, like the data
    layer's pipelines (float32 0-255 images, one-hot labels) but from `load_split`'s tensors.
    Several workers evaluate whole batches of a repeated set (they must run the same steps)."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    global_batch = config.batch_size
    num_classes = info.num_classes

    def split_arrays(split):
        return load_split(config.dataset, split, config.image_size, crop_fraction, config.data_dir)

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes, dtype=tf.float32)

    def train_fn(context):
        images, labels = split_arrays("train")
        batch = context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(batch, drop_remainder=True)
        if config.seed is None:
            ds = ds.map(lambda x, y: one_hot(augment_batch(x), y), num_parallel_calls=autotune)
        else:
            seeds = tf.data.Dataset.random(seed=config.seed).batch(2)
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda xy, s: one_hot(augment_batch(xy[0], s), xy[1]),
                num_parallel_calls=autotune,
            )
        return ds.with_options(_options(config.seed is not None)).prefetch(autotune)

    def eval_fn(context):
        images, labels = split_arrays("eval")
        batch = context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.batch(batch, drop_remainder=multi_worker)
        if multi_worker:
            ds = ds.repeat()
        ds = ds.map(lambda x, y: one_hot(tf.cast(x, tf.float32), y), num_parallel_calls=autotune)
        return ds.with_options(_options(True)).prefetch(autotune)

    return train_fn, eval_fn


def array_datasets(config, info, crop_fraction):
    """`(train, eval)` inputs of `fit` and `evaluate` without TensorFlow: both splits held as
    backend tensors on the default device (the GPU), an endless iterator of augmented training
    batches (a new order each pass over the split, the last partial batch dropped) and the
    evaluation batches in order (`ArrayBatches`). Float32 0-255 images and one-hot labels, like
    the `tf.data` input; random draws from `config.seed` through a Keras `SeedGenerator`."""
    images, labels = load_split(config.dataset, "train", config.image_size, crop_fraction)
    eval_images, eval_labels = load_split(config.dataset, "eval", config.image_size, crop_fraction)
    batch, count = config.batch_size, len(images)
    window = 2 * (config.image_size // 8) + 1
    seed = keras.random.SeedGenerator(config.seed)
    images, labels = ops.convert_to_tensor(images), ops.convert_to_tensor(labels)

    def train():
        while True:
            order = keras.random.shuffle(ops.arange(count, dtype="int32"), seed=seed)
            for start in range(0, count - batch + 1, batch):
                index = order[start : start + batch]
                rows = keras.random.randint([batch], 0, window, seed=seed)
                cols = keras.random.randint([batch], 0, window, seed=seed)
                flips = keras.random.randint([batch], 0, 2, seed=seed) > 0
                x = pad_crop_flip(ops.take(images, index, axis=0), rows, cols, flips)
                yield x, ops.one_hot(ops.take(labels, index, axis=0), info.num_classes)

    return train(), ArrayBatches(eval_images, eval_labels, batch, info.num_classes)


class ArrayBatches(keras.utils.PyDataset):
    """Evaluation batches of a split held as backend tensors: float32 images, one-hot labels,
    in order, the last batch partial."""

    def __init__(self, images, labels, batch_size, num_classes):
        super().__init__()
        self.images = ops.convert_to_tensor(images)
        self.labels = ops.convert_to_tensor(labels)
        self.count, self.batch_size, self.num_classes = len(labels), batch_size, num_classes

    def __len__(self):
        return -(-self.count // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        labels = ops.one_hot(self.labels[part], self.num_classes)
        return ops.cast(self.images[part], "float32"), labels


def _options(deterministic):
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options
