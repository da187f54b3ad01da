"""Image data input for training, calibration, evaluation and QAT, on ``tf.data``.

TensorFlow only: ``import ghostnet_keras`` never imports this package, and it imports no
Keras. Image folders need TensorFlow alone; TFDS names also need tensorflow-datasets (the
``train`` extra), imported on first use of such a name.

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
``pipeline`` (``make_dataset``, ``dataset_info``), ``arrays`` (NumPy batches for calibration
and evaluation) and ``check`` (the ``python -m ghostnet_keras.data`` command line).
"""

from ghostnet_keras.data.arrays import ImageSource, image_source
from ghostnet_keras.data.folders import IMAGE_EXTENSIONS
from ghostnet_keras.data.pipeline import dataset_info, make_dataset
from ghostnet_keras.data.randaugment import parse_randaugment
from ghostnet_keras.data.specs import DataInfo, DatasetSpec, parse_dataset
from ghostnet_keras.data.transforms import SMALL_IMAGE_SIZE, eval_transform

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
