"""Image data input for training, calibration, evaluation and QAT, on ``tf.data``.

TensorFlow only, but for ``dataset_info`` of an image folder and the folder listing, which
the trainer's in-memory input uses on any backend: ``import ghostnet_keras`` never imports
this package, and it imports no Keras. Image folders need TensorFlow alone; TFDS names also
need tensorflow-datasets (the ``train`` extra), imported on first use of such a name.

    info = dataset_info("folder:/data/flowers")
    train = make_dataset("folder:/data/flowers", "train", training=True, batch_size=64)
    val = make_dataset("folder:/data/flowers", "eval", training=False, batch_size=64)
    calibration = image_source("folder:/data/flowers", "calibration", image_size=224,
                               num_images=100)

Images come out as float32 RGB in 0-255 (the models normalise in their graph), labels one-hot
float32 (so label smoothing works) or int32. See docs/data.md for the augmentation, the folder
layout, corrupt files, ImageNet's manual download and sharding.

Modules: ``specs`` (what a spec names), ``folders`` (listing image folders), ``tfds_source``
(TFDS), ``transforms`` (decode, evaluation crop, training augmentation), ``randaugment``,
``info`` (``dataset_info``), ``pipeline`` (``make_dataset``), ``arrays`` (NumPy batches for
calibration and evaluation) and ``check`` (the ``python -m ghostnet_keras.data`` command line).
"""

import importlib

# Public name -> the module of this package that defines it; each loads on first use (PEP 562),
# so that `python -m ghostnet_keras.data` can quiet TensorFlow's start-up before it loads.
_PUBLIC = {
    "ImageSource": "arrays",
    "image_source": "arrays",
    "IMAGE_EXTENSIONS": "folders",
    "dataset_info": "info",
    "make_dataset": "pipeline",
    "parse_randaugment": "randaugment",
    "DataInfo": "specs",
    "DatasetSpec": "specs",
    "parse_dataset": "specs",
    "SMALL_IMAGE_SIZE": "transforms",
    "eval_transform": "transforms",
}

__all__ = [
    "IMAGE_EXTENSIONS",
    "SMALL_IMAGE_SIZE",
    "DataInfo",
    "DatasetSpec",
    "ImageSource",
    "dataset_info",
    "eval_transform",
    "image_source",
    "make_dataset",
    "parse_dataset",
    "parse_randaugment",
]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
