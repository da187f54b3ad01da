"""Image folders: ``ROOT/train/<class>/*`` with ``ROOT/val|validation|test/<class>/*`` for
training, and also ``ROOT/<class>/*`` or a flat folder of images for calibration and
evaluation. Listing, and what it warns about or refuses; the pipelines read the files.

TensorFlow-free at import: the trainer's in-memory input lists folders without TensorFlow
(``training.memory_data``, on JAX); only the check that a class folder holds one
decodable image decodes, with TensorFlow where it is installed, else with Pillow."""

import dataclasses
import os
import sys

# File name endings listed from an image folder (IMAGE_EXTENSIONS, re-exported here); anything
# else is skipped with a warning.
from ghostnet_keras.constants import IMAGE_EXTENSIONS
from ghostnet_keras.data.specs import DataInfo, error

TRAIN_FOLDERS = ("train",)
EVAL_FOLDERS = ("val", "validation", "test")

_LISTINGS = {}  # the last folder listings, see list_split
PROBLEMS = {}  # split folder -> what its listing warned about
HIDDEN = {}  # listed folder -> the hidden entries its listing skipped


def warn(message):
    print(f"WARNING: {message}", file=sys.stderr)


def is_hidden(name):
    """Hidden entries (names that start with '.': ``.DS_Store``, ``.ipynb_checkpoints``,
    ``.thumbs``, ...) are no part of a data set."""
    return name.startswith(".")


def entries(directory, hidden):
    """The entries of ``directory`` sorted by name, without the hidden ones, whose paths are
    appended to the list ``hidden``: the one listing of every folder reader (training,
    calibration, evaluation). Hidden entries are skipped without a warning; ``--check``
    names them."""
    found = sorted(os.scandir(directory), key=lambda e: e.name)
    hidden.extend(e.path for e in found if is_hidden(e.name))
    return [e for e in found if not is_hidden(e.name)]


def splits(spec):
    """``(train folder name, evaluation folder name)`` of ``spec.path``."""
    root = spec.path
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise error(
            f"The image folder {root} {what} (expected {root}/train/<class>/* and "
            f"{root}/val/<class>/* or {root}/test/<class>/*).",
            spec,
        )
    train = next((s for s in TRAIN_FOLDERS if os.path.isdir(os.path.join(root, s))), None)
    if train is None:
        raise error(
            f"The image folder {root} has no train/ sub-folder (expected {root}/train/<class>/* "
            f"and {root}/val/<class>/* or {root}/test/<class>/*).",
            spec,
        )
    evals = next((s for s in EVAL_FOLDERS if os.path.isdir(os.path.join(root, s))), None)
    if evals is None:
        raise error(
            f"The image folder {root} has no evaluation split: add {root}/val/<class>/* (or "
            f"test/) with the same class folders as {root}/{train}/.",
            spec,
        )
    return train, evals


def list_split(spec, split, class_names=None):
    """The image files of ``root/split/<class>/*`` in sorted order, their labels and the
    class names (sorted sub-folder names; ``class_names`` gives those of train/ for the
    evaluation split).

    Warns (on stderr, with the paths) about files that are not images by name, sub-folders of
    class folders, entries that cannot be read (broken links, FIFOs), and evaluation classes
    without usable images; the last three are kept in ``PROBLEMS`` for ``--check``.

    Raises:
        ValueError: for a split without images, evaluation classes that train/ lacks, or a
            training class without images or whose files all fail to decode.
    """
    split_dir = os.path.join(spec.path, split)
    try:
        hidden = []
        found = [e.name for e in entries(split_dir, hidden) if e.is_dir()]
        # Listing ImageNet takes seconds and a training run asks several times: the listing
        # is kept while no class folder changes (adding or removing a file changes its mtime).
        stamp = tuple(os.stat(os.path.join(split_dir, n)).st_mtime_ns for n in found)
        key = (split_dir, tuple(found), stamp, class_names and tuple(class_names))
        if key not in _LISTINGS:
            if len(_LISTINGS) >= 4:
                del _LISTINGS[next(iter(_LISTINGS))]
            _LISTINGS[key] = _scan_classes(spec, split_dir, found, class_names)
    except OSError as e:
        raise error(f"Cannot read {e.filename or split_dir}: {e.strerror}.", spec) from None
    paths, labels, class_names, hidden_in_classes = _LISTINGS[key]
    HIDDEN[split_dir] = hidden + list(hidden_in_classes)
    return list(paths), list(labels), class_names


def info(spec):
    """The ``DataInfo`` of the image folder ``spec`` (a parsed ``folder:`` spec)."""
    train, evals = splits(spec)
    train_paths, _, class_names = list_split(spec, train)
    eval_paths, _, _ = list_split(spec, evals, class_names)
    return DataInfo(len(class_names), class_names, train, evals, len(train_paths), len(eval_paths))


def _decodes(path):
    """True if the file at ``path`` can be read and decoded as an image: by the pipelines'
    own decoder where TensorFlow is installed, else by Pillow."""
    try:
        import tensorflow as tf
    except ImportError:
        return _pillow_decodes(path)
    from ghostnet_keras.data.transforms import decode

    try:
        decode(tf.io.read_file(path))
    except tf.errors.OpError:
        return False
    return True


def _pillow_decodes(path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _shown(paths, limit=5):
    return ", ".join(paths[:limit]) + (", ..." if len(paths) > limit else "")


@dataclasses.dataclass
class _ClassFolders:
    """What the class folders of one split hold, sorted by kind of entry."""

    paths: list = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    per_class: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)  # files that are not images
    nested: list = dataclasses.field(default_factory=list)
    unreadable: list = dataclasses.field(default_factory=list)


def _checked_class_names(spec, split_dir, found, class_names):
    """The class names of a split: its own folders for train/ (``class_names`` None), else
    ``class_names``, which must hold every folder found."""
    if class_names is None:
        return found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise error(
            f"{split_dir} has class folders that train/ does not have: {', '.join(unknown[:5])}.",
            spec,
        )
    return class_names


def _read_class_folders(split_dir, found, class_names, hidden):
    index = {name: i for i, name in enumerate(class_names)}
    listing = _ClassFolders()
    for name in found:
        class_dir = os.path.join(split_dir, name)
        listing.per_class[name] = []
        for entry in entries(class_dir, hidden):
            if entry.is_dir():
                listing.nested.append(entry.path)
            elif not entry.is_file():
                listing.unreadable.append(entry.path)  # a broken link, a FIFO, a socket, ...
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                listing.paths.append(entry.path)
                listing.labels.append(index[name])
                listing.per_class[name].append(entry.path)
            else:
                listing.skipped.append(entry.path)
    return listing


def _entry_problems(split_dir, listing):
    """The problems of entries that are not images directly in a class folder."""
    problems = []
    if listing.nested:
        problems.append(
            f"ignoring {len(listing.nested)} sub-folder(s) of class folders (images must sit "
            f"directly in {split_dir}/<class>/): {_shown(listing.nested)}"
        )
    if listing.unreadable:
        problems.append(
            f"skipping {len(listing.unreadable)} entr(ies) of {split_dir} that cannot be read "
            f"(broken links or not regular files): {_shown(listing.unreadable)}"
        )
    return problems


def _unusable_classes(split_dir, per_class):
    """``(empty, broken)``: the class folders without image files, and those whose files all
    fail to decode (as empty as one without files; found by decoding files in order until one
    works, one decode per class in the usual case)."""
    empty = [os.path.join(split_dir, n) for n, files in per_class.items() if not files]
    broken = [
        os.path.join(split_dir, n)
        for n, files in per_class.items()
        if files and not any(_decodes(f) for f in files)
    ]
    return empty, broken


def _class_problems(spec, empty, broken, training):
    """The problems of unusable classes: an error for train/, warnings for the other splits."""
    if training and (empty or broken):
        what = []
        if empty:
            what.append(f"{_shown(empty)} hold(s) no images")
        if broken:
            what.append(f"no image of {_shown(broken)} can be read and decoded")
        raise error(
            f"{'; '.join(what)}: the model would have a class it never sees in training. Add "
            "images to the class folder or remove it.",
            spec,
        )
    problems = []
    if empty:
        problems.append(f"{len(empty)} class folder(s) hold no images: {_shown(empty)}")
    if broken:
        problems.append(
            f"no image of {len(broken)} class folder(s) can be read and decoded: {_shown(broken)}"
        )
    return problems


def _scan_classes(spec, split_dir, found, class_names):
    training = class_names is None
    class_names = _checked_class_names(spec, split_dir, found, class_names)
    hidden = []
    listing = _read_class_folders(split_dir, found, class_names, hidden)
    if listing.skipped:  # notes, .DS_Store, ...: reported, but not a problem of the data
        warn(
            f"skipping {len(listing.skipped)} file(s) of {split_dir} that are not images by "
            f"name ({'/'.join(IMAGE_EXTENSIONS)}): {_shown(listing.skipped)}"
        )
    problems = _entry_problems(split_dir, listing)
    if not listing.paths:
        raise error(
            f"{split_dir} holds no images: expected {split_dir}/<class>/*.jpg (or .png, .gif, "
            ".bmp, .webp), one sub-folder per class.",
            spec,
        )
    empty, broken = _unusable_classes(split_dir, listing.per_class)
    problems += _class_problems(spec, empty, broken, training)
    PROBLEMS[split_dir] = problems
    for problem in problems:
        warn(problem)
    return listing.paths, listing.labels, tuple(class_names), tuple(hidden)


def problems(spec):
    """The problems found by the last listing of each split folder of ``spec`` (see
    list_split): entries that cannot be read, nested folders, classes without usable images."""
    root = os.path.join(spec.path, "")
    return [p for d, found in PROBLEMS.items() if d.startswith(root) for p in found]


def hidden_entries(spec):
    """The hidden entries (see `is_hidden`) that the last listing of each split folder of
    ``spec`` skipped."""
    root = os.path.join(spec.path, "")
    return [p for d, found in HIDDEN.items() if d.startswith(root) for p in found]


def split_files(spec, folder, class_names, input_context):
    """The files and labels of one split folder, or of this input pipeline's share of it."""
    paths, labels, _ = list_split(spec, folder, class_names)
    if input_context and input_context.num_input_pipelines > 1:
        # Every n-th file: each worker sees all classes in the same proportions.
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        paths, labels = paths[i::n], labels[i::n]
    return paths, labels


def _files_of_class_folders(root, class_dirs, hidden):
    """The files of each class folder of ``root`` (warning about folders without images,
    nested folders and unreadable entries)."""
    per_class, nested, unreadable = [], [], []
    for entry in class_dirs:
        files = []
        for f in entries(entry.path, hidden):
            if f.is_dir():
                nested.append(f.path)
            elif f.is_file():
                files.append(f.path)
            else:
                unreadable.append(f.path)
        if not any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            warn(f"the class folder {entry.path} holds no images")
        per_class.append(files)
    if nested:
        warn(
            f"ignoring {len(nested)} sub-folder(s) of class folders (images must sit "
            f"directly in {root}/<class>/): {_shown(nested)}"
        )
    if unreadable:
        warn(
            f"skipping {len(unreadable)} entr(ies) of {root} that cannot be read (broken "
            f"links or not regular files): {_shown(unreadable)}"
        )
    return per_class


def _class_by_class(per_class):
    """``(files, labels)`` taking one file of each class in turn."""
    files, labels = [], []
    for position in range(max(len(f) for f in per_class) if per_class else 0):
        for label, class_files in enumerate(per_class):
            if position < len(class_files):
                files.append(class_files[position])
                labels.append(label)
    return files, labels


def list_images(root, spec):
    """Files and labels of ``root/<class>/*`` (labelled) or of a flat ``root/*`` (labels None),
    ordered class by class in turn (the first N images cover every class evenly), and the
    class names (None for a flat folder)."""
    hidden = HIDDEN[root] = []
    listed = entries(root, hidden)
    class_dirs = [e for e in listed if e.is_dir()]
    if class_dirs:
        files, labels = _class_by_class(_files_of_class_folders(root, class_dirs, hidden))
        class_names = tuple(entry.name for entry in class_dirs)
    else:
        files = [e.path for e in listed if e.is_file()]
        labels, class_names = None, None
    images = [i for i, f in enumerate(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    if len(images) < len(files):
        warn(f"skipping {len(files) - len(images)} file(s) of {root} that are not images by name")
    files = [files[i] for i in images]
    labels = None if labels is None else [labels[i] for i in images]
    if not files:
        raise ValueError(
            f"The folder {root} holds no images (expected <class>/*.jpg sub-folders, or "
            f"image files; extensions {'/'.join(IMAGE_EXTENSIONS)}). Received: data={spec!r}"
        )
    return files, labels, class_names
