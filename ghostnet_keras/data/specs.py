"""What a data set spec names (a TFDS name or ``folder:PATH``) and what a data set holds."""

import dataclasses
import difflib
import os
import re

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


def error(message, spec):
    """The ``ValueError`` of a bad data set: the message, then ``Received: dataset=SPEC``."""
    return ValueError(f"{message} Received: dataset={spec}")


def parse_dataset(spec):
    """Parses a data set spec: a TFDS name (``cifar10``, ``imagenet2012``,
    ``imagenette/160px-v2``, optionally ``:version``) or ``folder:PATH``.

    Folders need TensorFlow only; a TFDS name needs tensorflow-datasets (the ``train`` extra).

    Raises:
        ValueError: for an empty spec, a malformed name or a name TFDS does not know.
        ghostnet_keras.extras.MissingExtraError: for a TFDS name without tensorflow-datasets.
    """
    if isinstance(spec, DatasetSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise error("`dataset` must be a TFDS name such as 'cifar10' or 'folder:PATH'.", repr(spec))
    spec = spec.strip()
    if spec.startswith("folder:"):
        path = spec[len("folder:") :]
        if not path:
            raise error("`folder:` needs a path, as in 'folder:/data/flowers'.", spec)
        return DatasetSpec("folder", os.path.expanduser(path), os.path.expanduser(path), spec)
    if not _TFDS_NAME.match(spec):
        raise error(
            "`dataset` must be a TFDS name (lower case, optionally 'name/config:1.0.0') or "
            "'folder:PATH' for train/<class>/* and val/<class>/* image folders.",
            spec,
        )
    _check_tfds_name(spec)
    return DatasetSpec("tfds", spec, None, spec)


def tfds():
    """The ``tensorflow_datasets`` module, imported on first use of a TFDS name; without it a
    ``MissingExtraError`` whose one line names the extra to install."""
    from ghostnet_keras.extras import require

    return require("tensorflow_datasets", "train", "TFDS data sets")


def _check_tfds_name(spec):
    """Raises a ``ValueError`` if TFDS has no data set of this name (with close matches)."""
    lib = tfds()
    base = spec.split(":")[0].split("/")[0]
    try:
        lib.builder_cls(base)
    except lib.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(base, lib.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise error(
            f"Unknown dataset {base!r}: not a TensorFlow Datasets name.{hint} For your own "
            "images use 'folder:PATH'.",
            spec,
        ) from None
