"""The class names of a trained model, in index order, kept with the model.

A training run writes them twice: ``labels.txt`` (one name a line, UTF-8) in its model
directory, and the same file as an extra ``labels.txt`` member of ``model.keras`` (a zip
archive), so that whoever is handed the ``.keras`` file alone (the TFLite converter, a
colleague) finds them without being told. Keras ignores members it does not know:
``keras.saving.load_model`` loads such a file, in safe mode too, and saving the loaded model
again writes an ordinary ``.keras`` file (without the labels).

    save_labels("runs/x/model.keras", ["cat", "dog"])
    load_labels("runs/x/model.keras")  # ['cat', 'dog']
    load_labels("runs/x/labels.txt")   # ['cat', 'dog']

No TensorFlow, no Keras: the standard library only.
"""

import os
import zipfile

from ghostnet_keras import files

LABELS_FILE = "labels.txt"  # the name in a model directory and inside a .keras file


def _check(labels):
    labels = [str(label) for label in labels]
    for label in labels:
        if not label or label != label.strip() or "\n" in label or "\r" in label:
            raise ValueError(
                "A class name must be non-empty, on one line, without surrounding spaces. "
                f"Received: label={label!r}"
            )
    return labels


def labels_text(labels):
    """The ``labels.txt`` contents of ``labels``: one name a line, in index order."""
    return "".join(f"{label}\n" for label in _check(labels))


def parse_labels(text):
    """The names of a ``labels.txt`` text (blank lines at the end ignored)."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def write_labels_file(path, labels):
    """Writes ``labels`` as a plain ``labels.txt`` at ``path``, atomically."""
    files.write_bytes(path, labels_text(labels).encode("utf-8"))


def read_labels_file(path):
    """The names of the plain ``labels.txt`` at ``path``."""
    with open(path, encoding="utf-8") as f:
        return parse_labels(f.read())


def save_labels(keras_path, labels):
    """Adds ``labels`` as the ``labels.txt`` member of the ``.keras`` file at ``keras_path``
    (saved by Keras just before; replaces nothing else in it)."""
    text = labels_text(labels)
    with zipfile.ZipFile(keras_path, "a") as archive:
        if LABELS_FILE in archive.namelist():
            raise ValueError(
                f"The .keras file already holds {LABELS_FILE}. Received: keras_path={keras_path}"
            )
        archive.writestr(LABELS_FILE, text)


def load_labels(path):
    """The class names kept with a model, in index order, or ``None`` if it has none.

    ``path`` is a ``.keras`` file (its ``labels.txt`` member, else a ``labels.txt`` beside
    it, where the trainer writes one too) or a plain ``labels.txt`` file.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        return read_labels_file(path) if os.path.isfile(path) else None
    try:
        with zipfile.ZipFile(path) as archive:
            if LABELS_FILE in archive.namelist():
                return parse_labels(archive.read(LABELS_FILE).decode("utf-8"))
    except (OSError, zipfile.BadZipFile):
        return None
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), LABELS_FILE)
    return read_labels_file(beside) if os.path.isfile(beside) else None
