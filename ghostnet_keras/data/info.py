"""What a data set holds (`dataset_info`), without TensorFlow for image folders: the trainer's
in-memory input reads folders on JAX and PyTorch too (`training.memory_data`)."""

from ghostnet_keras.data import folders
from ghostnet_keras.data.specs import DataInfo, parse_dataset


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
        return folders.info(spec)
    from ghostnet_keras.data import tfds_source  # TensorFlow and tensorflow-datasets

    names, train, evals, num_train, num_eval = tfds_source.info(spec, data_dir)
    return DataInfo(len(names), names, train, evals, num_train, num_eval)
