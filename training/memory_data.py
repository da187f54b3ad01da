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
"""

import functools

import numpy as np
import tensorflow as tf

from ghostnet_keras import data

AUTOTUNE = tf.data.AUTOTUNE
LOAD_BATCH = 1000


@functools.lru_cache(maxsize=4)
def load_split(spec, split, image_size, crop_fraction, data_dir=None):
    """`(images, labels)` of a whole split: uint8 `[n, size, size, 3]` and int32 `[n]`,
    decoded and resized once (the data layer's evaluation transform) and kept for the process
    (the rows of a benchmark share them)."""
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


def augment_batch(images, seed=None):
    """A random crop of each image of a uint8 batch padded by 1/8 of its size with zeros, and
    a horizontal flip of half of them; float32 0-255 out. One op per batch, not per image."""
    size = images.shape[1]
    pad = size // 8
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, 3) if seed is not None else None

    def uniform(index, maxval):
        shape = [batch]
        if seed is None:
            return tf.random.uniform(shape, 0, maxval, tf.int32)
        return tf.random.stateless_uniform(shape, seeds[index], 0, maxval, tf.int32)

    rows = uniform(0, 2 * pad + 1)[:, None] + tf.range(size)[None, :]
    cols = uniform(1, 2 * pad + 1)[:, None] + tf.range(size)[None, :]
    flip = uniform(2, 2) > 0
    cols = tf.where(flip[:, None], tf.reverse(cols, [1]), cols)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    return tf.cast(cropped, tf.float32)


def dataset_fns(config, info, crop_fraction, multi_worker=False):
    """`(train_fn, eval_fn)` for `strategy.distribute_datasets_from_function`, like the data
    layer's pipelines (float32 0-255 images, one-hot labels) but from `load_split`'s tensors.
    Several workers evaluate whole batches of a repeated set (they must run the same steps)."""
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
            ds = ds.map(lambda x, y: one_hot(augment_batch(x), y), num_parallel_calls=AUTOTUNE)
        else:
            seeds = tf.data.Dataset.random(seed=config.seed).batch(2)
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda xy, s: one_hot(augment_batch(xy[0], s), xy[1]),
                num_parallel_calls=AUTOTUNE,
            )
        return ds.with_options(_options(config.seed is not None)).prefetch(AUTOTUNE)

    def eval_fn(context):
        images, labels = split_arrays("eval")
        batch = context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.batch(batch, drop_remainder=multi_worker)
        if multi_worker:
            ds = ds.repeat()
        ds = ds.map(lambda x, y: one_hot(tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE)
        return ds.with_options(_options(True)).prefetch(AUTOTUNE)

    return train_fn, eval_fn


def _options(deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options
