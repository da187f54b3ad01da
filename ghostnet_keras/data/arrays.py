"""Real, correctly preprocessed images as NumPy batches, for calibration and evaluation.

A data spec is a TFDS name (``cifar10``) or ``folder:PATH``. TFDS data sets and folders with
split sub-folders (``PATH/train/<class>/*`` and ``PATH/val/<class>/*``) pick the split that
fits the purpose; other folders (``PATH/<class>/*`` or a flat folder of images) are used as
they are. Every image gets the same decoding and `eval_transform` (resize, centre crop) as
the evaluation pipeline, so that calibration sees exactly what evaluation sees.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

import ghostnet_keras.data.folders as folders
import ghostnet_keras.data.pipeline as pipeline
import ghostnet_keras.data.transforms as transforms
from ghostnet_keras.constants import CROP_FRACTION
from ghostnet_keras.data.specs import parse_dataset

SPLIT_FOLDERS = {"calibration": folders.TRAIN_FOLDERS, "eval": folders.EVAL_FOLDERS}


@dataclasses.dataclass
class ImageSource:
    """Batches of ``(images, labels)`` (float32 0-255, int labels or None) and class names."""

    batches: object
    class_names: tuple | None
    description: str


def _error(message, spec):
    return ValueError(f"{message} Received: data={spec!r}")


def _reason(err):
    """The operating system's words from a TensorFlow file error ("Input/output error")."""
    return str(err.message).split("; ")[-1].strip() or type(err).__name__


def _folder_batches(files, labels, image_size, crop_fraction, batch_size, limit, spec):
    images, batch_labels, count, decoded = [], [], 0, 0
    for index, path in enumerate(files):
        if count >= limit:
            break
        try:
            contents = tf.io.read_file(path)
        except tf.errors.OpError as e:
            folders.warn(f"skipping {path}: {pipeline.UNREADABLE} ({_reason(e)})")
            continue
        try:
            image = transforms.decode(contents)
        except tf.errors.OpError:
            folders.warn(f"skipping {path}: it {pipeline.UNDECODABLE}")
            continue
        images.append(transforms.eval_transform(image, image_size, crop_fraction).numpy())
        batch_labels.append(-1 if labels is None else labels[index])
        count += 1
        decoded += 1
        if len(images) == batch_size:
            yield np.stack(images), None if labels is None else np.array(batch_labels)
            images, batch_labels = [], []
    if images:
        yield np.stack(images), None if labels is None else np.array(batch_labels)
    if decoded == 0:
        raise _error("None of the image files could be decoded.", spec)


def image_source(
    spec,
    purpose,
    *,
    image_size,
    num_images,
    batch_size=32,
    crop_fraction=CROP_FRACTION,
    data_dir=None,
):
    """Labelled (where known) images of a data spec, preprocessed for evaluation.

    Args:
        spec: ``folder:PATH`` or a TFDS name.
        purpose: ``"calibration"`` (the training split: ``PATH/train``, TFDS ``train``) or
            ``"eval"`` (``PATH/val|validation|test``, TFDS ``validation`` or ``test``). A
            folder without such sub-folders is used as it is, for either purpose.
        image_size: the model's input size (square).
        num_images: at most this many images (folders: spread evenly over the classes).
        batch_size: images per batch.
        crop_fraction: the centre crop of the evaluation transform.
        data_dir: the TFDS data directory.

    Returns:
        An :class:`ImageSource`.
    """
    if purpose not in SPLIT_FOLDERS:
        raise ValueError(
            f"`purpose` must be 'calibration' or 'eval'. Received: purpose={purpose!r}"
        )
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"`num_images` must be a positive integer. Received: {num_images=}")
    parsed = parse_dataset(spec)
    if parsed.kind == "folder":
        root = parsed.path
        if not os.path.isdir(root):
            raise _error(f"The image folder {root} does not exist.", spec)
        for name in SPLIT_FOLDERS[purpose]:
            if os.path.isdir(os.path.join(root, name)):
                root = os.path.join(root, name)
                break
        else:
            if purpose == "eval" and os.path.isdir(os.path.join(root, "train")):
                folders.warn(f"{root} has no val/ or test/ folder: evaluating on {root}/train")
                root = os.path.join(root, "train")
        files, labels, class_names = folders.list_images(root, spec)
        batches = _folder_batches(
            files, labels, image_size, crop_fraction, batch_size, num_images, spec
        )
        count = min(num_images, len(files))
        return ImageSource(batches, class_names, f"{count} images of {root}")
    info = pipeline.dataset_info(parsed, data_dir)
    split = "train" if purpose == "calibration" else "eval"
    ds = pipeline.make_dataset(
        parsed,
        split,
        training=False,
        batch_size=batch_size,
        image_size=image_size,
        data_dir=data_dir,
        crop_fraction=crop_fraction,
        one_hot=False,
        cache=False,
    )
    if purpose == "calibration":
        # TFDS records come in a fixed order; skip around so that calibration sees many classes.
        ds = ds.unbatch().shuffle(4 * num_images, seed=0).batch(batch_size)
    ds = ds.unbatch().take(num_images).batch(batch_size)
    splits = info.train_split if split == "train" else info.eval_split
    return ImageSource(
        ((x, y) for x, y in ds.as_numpy_iterator()),
        info.class_names,
        f"{num_images} images of {spec} ({splits})",
    )
