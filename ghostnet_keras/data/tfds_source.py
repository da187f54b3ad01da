"""TensorFlow Datasets (TFDS) sources. tensorflow-datasets is imported (by ``specs.tfds``) on
first use of a TFDS name only; without it the error names the extra to install."""

import os
import socket
import urllib.parse
import urllib.request

import tensorflow as tf
from absl import logging

from ghostnet_keras.data.specs import error, tfds

IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
# Seconds to wait for a data set's download server (or the proxy to it) before preparing it.
REACH_SECONDS = 5


def builder(spec, data_dir):
    lib = tfds()
    try:
        return lib.builder(spec.name, data_dir=data_dir)
    except (lib.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
        raise error(f"TFDS cannot build {spec.name!r}: {str(e).splitlines()[0]}", spec) from None


def _manual_dir(builder):
    return os.path.join(builder.data_dir_root, "downloads", "manual")


def prepare(builder, spec):
    """Downloads and prepares a TFDS data set unless it is ready; checks manual downloads."""
    if builder.is_prepared():
        return
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        manual = _manual_dir(builder)
        if builder.name == "imagenet2012":
            missing = [a for a in IMAGENET_ARCHIVES if not os.path.exists(os.path.join(manual, a))]
            if missing:
                raise error(
                    f"imagenet2012 must be downloaded by hand: put {' and '.join(missing)} "
                    f"(from https://image-net.org/download-images, after registering) in "
                    f"{manual}/ ; the first run then prepares the data set in "
                    f"{builder.data_dir_root}/imagenet2012/ (this takes hours).",
                    spec,
                )
        elif not os.path.isdir(manual) or not os.listdir(manual):
            instructions = " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
            raise error(
                f"{builder.name} must be downloaded by hand into {manual}/ : {instructions}",
                spec,
            )
    unreachable = _unreachable(builder)
    if unreachable:
        name, root = builder.name, builder.data_dir_root
        raise error(
            f"{name} is not prepared in {root} and cannot be downloaded: {unreachable}. "
            f"Prepare it on a machine with a network (`tfds build {name} --data_dir=DIR`), then "
            f"copy DIR/{name} to {root}/ (see docs/data.md), or train on image folders with "
            "--dataset=folder:PATH.",
            spec,
        )
    logging.info("Preparing %s in %s", builder.name, builder.data_dir_root)
    builder.download_and_prepare()


def _unreachable(builder):
    """None if every download server that ``builder``'s checksums name answers (directly or
    through the proxy that ``*_proxy`` sets for it), else ``"HOST:PORT cannot be reached
    (reason)"``.

    Offline, TFDS retries each download for minutes, prints progress bars and leaves partial
    downloads; one connection attempt per server fails in seconds instead. A data set whose
    builder names no URLs (no checksums file) is not checked."""
    try:
        urls = sorted(builder.url_infos or ())
    except Exception:  # a builder without checksums, or checksums TFDS cannot read
        return None
    proxies = urllib.request.getproxies()
    tried = set()
    for url in urls:
        target = urllib.parse.urlsplit(url)
        if target.scheme not in ("http", "https") or not target.hostname:
            continue
        proxy = proxies.get(target.scheme)
        via = ""
        if proxy and not urllib.request.proxy_bypass(target.hostname):
            target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            via = f" (the proxy to {urllib.parse.urlsplit(url).hostname})"
        address = (target.hostname, target.port or (443 if target.scheme == "https" else 80))
        if address in tried:
            continue
        tried.add(address)
        try:
            socket.create_connection(address, timeout=REACH_SECONDS).close()
        except OSError as e:
            reason = e.strerror or str(e) or type(e).__name__
            return f"{address[0]}:{address[1]}{via} cannot be reached ({reason})"
    return None


def splits(builder, spec):
    available = builder.info.splits
    if "train" not in available:
        raise error(f"{builder.name} has no 'train' split (it has {sorted(available)}).", spec)
    evals = next((s for s in ("validation", "test") if s in available), None)
    if evals is None:
        raise error(
            f"{builder.name} has no 'validation' or 'test' split (it has {sorted(available)}).",
            spec,
        )
    return "train", evals


def keys(builder, spec):
    """The image and label feature names of a TFDS classification data set."""
    lib = tfds()
    supervised = builder.info.supervised_keys
    features = dict(builder.info.features.items())
    if supervised and len(supervised) == 2 and isinstance(supervised[0], str):
        image_key, label_key = supervised
    else:
        image_key, label_key = "image", "label"
    if not isinstance(features.get(image_key), lib.features.Image) or not isinstance(
        features.get(label_key), lib.features.ClassLabel
    ):
        raise error(
            f"{builder.name} is not an image classification data set (it needs an Image and a "
            "ClassLabel feature).",
            spec,
        )
    return image_key, label_key


def info(spec, data_dir):
    """``(class_names, train_split, eval_split, num_train, num_eval)``; prepares the data set
    on first use."""
    b = builder(spec, data_dir)
    prepare(b, spec)
    train, evals = splits(b, spec)
    _, label_key = keys(b, spec)
    names = tuple(b.info.features[label_key].names)
    sizes = b.info.splits
    return names, train, evals, sizes[train].num_examples, sizes[evals].num_examples


def source(spec, split_name, input_context, data_dir, shuffle, seed):
    """``(dataset of (tfds_id, encoded image, int32 label), count)`` of one split (or of this
    input pipeline's even share of it)."""
    lib = tfds()
    b = builder(spec, data_dir)
    prepare(b, spec)
    image_key, label_key = keys(b, spec)
    name = split_name
    count = b.info.splits[name].num_examples
    if input_context and input_context.num_input_pipelines > 1:
        # Record-level shards, so that any number of workers works with any number of files.
        parts = lib.even_splits(name, input_context.num_input_pipelines)
        name = parts[input_context.input_pipeline_id]
        count = b.info.splits[name].num_examples
    ds = b.as_dataset(
        split=name,
        shuffle_files=shuffle,
        decoders={image_key: lib.decode.SkipDecoding()},
        read_config=lib.ReadConfig(shuffle_seed=seed, try_autocache=False, add_tfds_id=True),
    )
    ds = ds.map(
        lambda ex: (ex["tfds_id"], ex[image_key], tf.cast(ex[label_key], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds, count
