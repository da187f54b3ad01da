r"""Detection data: a folder of images with a COCO-style JSON, and a small real-image set made
offline from the shared CIFAR-10 and Imagenette archives.

The folder (one subfolder per split, e.g. ``train/`` and ``val/``)::

    DIR/
      train/annotations.json    # COCO "instances" JSON: images, annotations, categories
      train/images/000000.jpg   # each image's "file_name" is relative to its split's folder
      val/annotations.json
      val/images/...

``annotations.json`` is the COCO object-detection format: ``images`` (``id``, ``file_name``,
``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox`` as
``[x, y, width, height]`` in pixels of the image, ``area``, ``iscrowd``) and ``categories``
(``id``, ``name``). A COCO download's ``instances_val2017.json`` beside its images works as it
is once placed as ``<split>/annotations.json`` with the images under ``<split>/``.

Making the synthetic set (real CIFAR-10 objects pasted at known boxes on real ImageNet
backgrounds; the held-out split takes CIFAR-10's test objects on Imagenette's validation
images, so that no object or background of it was seen in training)::

    python -m training.detection_data --output=/tmp/det-data --train_images=400 \
        --val_images=100 --classes=airplane,automobile,frog --image_size=128
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tarfile
import tempfile

import numpy as np

from ghostnet_keras import files
from ghostnet_keras.constants import IMAGE_EXTENSIONS

ANNOTATIONS = "annotations.json"
IMAGES = "images"
SPLITS = ("train", "val")
# Where each split of the synthetic set takes its objects and backgrounds from: the held-out
# split uses images never seen in training (CIFAR-10's test set, Imagenette's validation set).
SOURCE_SPLITS = {"train": ("train", "train"), "val": ("test", "val")}
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_SIZE = 32
SHARED_DATASETS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OBJECTS = SHARED_DATASETS / "cifar10-jpeg.tgz"
DEFAULT_BACKGROUNDS = SHARED_DATASETS / "imagenette-160-subset.tgz"
PAD_LABEL = -1  # a padding box's label and coordinates (keras-hub's RetinaNet convention)


# ---------------------------------------------------------------------------------------------
# Reading a folder


@dataclasses.dataclass
class DetectionSplit:
    """One split of a detection folder.

    Attributes:
        root: the split's folder.
        annotations: path of its COCO JSON.
        image_ids: the COCO image ids, in file order.
        paths: each image's path.
        sizes: each image's ``(height, width)`` as the JSON gives it.
        boxes: per image, a ``(n, 4)`` float32 array of ``yxyx`` pixel boxes.
        labels: per image, a ``(n,)`` int32 array of class indices (0..classes-1).
        class_names: the category names, in category id order.
        category_ids: the COCO category id of each class index.
    """

    root: pathlib.Path
    annotations: pathlib.Path
    image_ids: list
    paths: list
    sizes: list
    boxes: list
    labels: list
    class_names: list
    category_ids: list

    def __len__(self):
        return len(self.paths)

    @property
    def num_boxes(self):
        return sum(len(b) for b in self.boxes)


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{path} does not exist: a detection split is a folder with {ANNOTATIONS} (COCO "
            f"format) beside its images. Received: path={str(path)!r}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}). Received: path={str(path)!r}"
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise ValueError(
            f"{path} must be a COCO JSON object with the lists 'images', 'annotations' and "
            f"'categories'. Received: path={str(path)!r}"
        )
    return data


def _check_box(annotation, path, sizes):
    box = annotation.get("bbox")
    image_id = annotation.get("image_id")
    if image_id not in sizes:
        raise ValueError(
            f"{path}: annotation {annotation.get('id')} names an image id that is not in "
            f"'images'. Received: image_id={image_id!r}"
        )
    if not (
        isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)
    ):
        raise ValueError(
            f"{path}: annotation {annotation.get('id')}'s bbox must be [x, y, width, height]. "
            f"Received: bbox={box!r}"
        )
    x, y, w, h = box
    height, width = sizes[image_id]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width + 0.5 or y + h > height + 0.5:
        raise ValueError(
            f"{path}: annotation {annotation.get('id')}'s bbox must have a positive size and "
            f"lie inside its {width}x{height} image. Received: bbox={box!r}"
        )
    return y, x, y + h, x + w


def read_split(root):
    """Reads a split folder (``annotations.json`` beside the images it names).

    Crowd annotations (``iscrowd``) are left out of the training targets (COCO's evaluation
    ignores them). Raises a ``ValueError`` naming the file and the entry on a malformed JSON,
    a missing image or a box outside its image.
    """
    root = pathlib.Path(root)
    path = root / ANNOTATIONS
    data = _load_json(path)
    categories = sorted(data["categories"], key=lambda c: c["id"])
    if not categories:
        raise ValueError(f"{path} has no categories. Received: path={str(path)!r}")
    index = {c["id"]: i for i, c in enumerate(categories)}
    images = data["images"]
    sizes = {im["id"]: (im["height"], im["width"]) for im in images}
    boxes = {im["id"]: [] for im in images}
    labels = {im["id"]: [] for im in images}
    for annotation in data["annotations"]:
        box = _check_box(annotation, path, sizes)
        if annotation.get("category_id") not in index:
            raise ValueError(
                f"{path}: annotation {annotation.get('id')} names an unknown category. "
                f"Received: category_id={annotation.get('category_id')!r}"
            )
        if annotation.get("iscrowd"):
            continue
        boxes[annotation["image_id"]].append(box)
        labels[annotation["image_id"]].append(index[annotation["category_id"]])
    paths = [root / im["file_name"] for im in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(
            f"{path} names {len(missing)} image(s) that do not exist, e.g. {missing[0]}. "
            f"Received: path={str(path)!r}"
        )
    ids = [im["id"] for im in images]
    return DetectionSplit(
        root=root,
        annotations=path,
        image_ids=ids,
        paths=paths,
        sizes=[sizes[i] for i in ids],
        boxes=[np.asarray(boxes[i], "float32").reshape(-1, 4) for i in ids],
        labels=[np.asarray(labels[i], "int32") for i in ids],
        class_names=[c["name"] for c in categories],
        category_ids=[c["id"] for c in categories],
    )


def read_folder(directory, splits=SPLITS):
    """Reads ``directory/<split>/`` for each split; returns ``{split: DetectionSplit}``. The
    splits must name the same categories."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"The detection folder does not exist. Received: data={str(directory)!r}")
    read = {split: read_split(directory / split) for split in splits}
    names = {split: s.class_names for split, s in read.items()}
    if len({tuple(n) for n in names.values()}) > 1:
        raise ValueError(f"The splits must have the same categories. Received: {names}")
    return read


def padded_targets(split, image_size, max_boxes=None):
    """The split's boxes scaled to ``image_size`` x ``image_size`` images and padded to one
    ``(images, max_boxes, 4)`` ``yxyx`` array and ``(images, max_boxes)`` labels (padding
    ``-1``, keras-hub's convention), as ``float32``."""
    max_boxes = max_boxes or max(1, max(len(b) for b in split.boxes))
    boxes = np.full((len(split), max_boxes, 4), PAD_LABEL, "float32")
    labels = np.full((len(split), max_boxes), PAD_LABEL, "float32")
    for i, ((height, width), b, c) in enumerate(
        zip(split.sizes, split.boxes, split.labels, strict=True)
    ):
        scale = np.array([image_size / height, image_size / width] * 2, "float32")
        n = min(len(b), max_boxes)
        boxes[i, :n] = b[:n] * scale
        labels[i, :n] = c[:n]
    return boxes, labels


def dataset(split, image_size, batch_size, shuffle=False, seed=0, max_boxes=None):
    """A ``tf.data.Dataset`` of ``(images, {"boxes", "labels"})`` batches for keras-hub's
    ``RetinaNetObjectDetector.fit``: 0-255 float32 RGB images resized to ``image_size``
    square, their ``yxyx`` pixel boxes scaled alike and padded (:func:`padded_targets`)."""
    import tensorflow as tf

    boxes, labels = padded_targets(split, image_size, max_boxes)
    paths = [str(p) for p in split.paths]

    def load(path, box, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size))
        return image, {"boxes": box, "labels": label}

    data = tf.data.Dataset.from_tensor_slices((paths, boxes, labels))
    if shuffle:
        data = data.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    return data.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)


def load_images(split, image_size):
    """The split's images as one ``(n, image_size, image_size, 3)`` float32 0-255 array."""
    from PIL import Image

    out = np.empty((len(split), image_size, image_size, 3), "float32")
    for i, path in enumerate(split.paths):
        with Image.open(path) as image:
            image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
            out[i] = np.asarray(image, "float32")
    return out


# ---------------------------------------------------------------------------------------------
# Making a synthetic set from real images


def _source_root(path, stack):
    """A folder for ``path``: the folder itself, or a ``.tgz`` unpacked into a temporary
    folder that ``stack`` removes."""
    path = pathlib.Path(path)
    if path.is_dir():
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        target = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with tarfile.open(path) as tar:
            tar.extractall(target, filter="data")
        return target
    raise ValueError(f"Expected a folder or a .tgz archive. Received: path={str(path)!r}")


def _find_split(root, split):
    """``root/split`` or ``root/<one folder>/split`` (an archive with a top folder)."""
    for candidate in (root / split, *(d / split for d in sorted(root.iterdir()) if d.is_dir())):
        if candidate.is_dir():
            return candidate
    raise ValueError(f"{root} has no {split!r} folder. Received: path={str(root)!r}")


def _files(folder):
    found = pathlib.Path(folder).rglob("*")
    return sorted(p for p in found if p.name.lower().endswith(IMAGE_EXTENSIONS))


def _overlaps(box, placed):
    y0, x0, y1, x1 = box
    return any(y0 < b[2] and b[0] < y1 and x0 < b[3] and b[1] < x1 for b in placed)


def _compose(background, objects, rng, image_size, scale_range):
    """Pastes ``objects`` (PIL images, with labels) at random non-overlapping places on the
    center square of ``background`` resized to ``image_size``; returns the image and the
    placed ``(box yxyx, label)`` pairs (an object that finds no free place is left out)."""
    from PIL import Image

    w, h = background.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    canvas = background.crop((left, top, left + side, top + side))
    canvas = canvas.resize((image_size, image_size), Image.BILINEAR)
    placed = []
    for tile, label in objects:
        size = int(round(CIFAR_SIZE * rng.uniform(*scale_range)))
        for _ in range(20):
            y, x = rng.integers(0, image_size - size + 1, size=2)
            box = (int(y), int(x), int(y) + size, int(x) + size)
            if not _overlaps(box, [b for b, _ in placed]):
                canvas.paste(tile.resize((size, size), Image.BILINEAR), (box[1], box[0]))
                placed.append((box, label))
                break
    return canvas, placed


@dataclasses.dataclass(frozen=True)
class SynthesisOptions:
    """How :func:`synthesize` makes its images."""

    train_images: int = 400
    val_images: int = 100
    classes: tuple = CIFAR10_CLASSES
    image_size: int = 128
    objects_per_image: tuple = (1, 3)
    scale_range: tuple = (1.0, 2.0)
    seed: int = 0

    def check(self):
        for name in ("train_images", "val_images", "image_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: {name}={getattr(self, name)!r}"
                )
        unknown = [c for c in self.classes if c not in CIFAR10_CLASSES]
        if not self.classes or unknown or len(set(self.classes)) != len(self.classes):
            raise ValueError(
                f"`classes` must be distinct CIFAR-10 class names ({', '.join(CIFAR10_CLASSES)}). "
                f"Received: classes={','.join(self.classes)}"
            )
        low, high = self.objects_per_image
        if not 1 <= low <= high:
            raise ValueError(
                "`objects_per_image` must be (low, high) with 1 <= low <= high. "
                f"Received: objects_per_image={self.objects_per_image}"
            )
        small, large = self.scale_range
        if not 0 < small <= large or CIFAR_SIZE * large > self.image_size:
            raise ValueError(
                "`scale_range` must be (low, high) with 0 < low <= high and 32 x high no "
                f"larger than image_size={self.image_size}. "
                f"Received: scale_range={self.scale_range}"
            )


def _write_split(directory, split, count, sources, options, rng):
    """Writes ``count`` composed images and their COCO JSON into ``directory/split``."""
    from PIL import Image

    objects_dir, backgrounds = sources
    by_class = {c: _files(objects_dir / c) for c in options.classes}
    for name, paths in by_class.items():
        if not paths:
            raise ValueError(f"{objects_dir / name} has no images. Received: class={name!r}")
    out = directory / split
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, count + 1):
        n = int(rng.integers(options.objects_per_image[0], options.objects_per_image[1] + 1))
        picks = rng.integers(0, len(options.classes), size=n)
        tiles = []
        for label in picks:
            paths = by_class[options.classes[label]]
            with Image.open(paths[int(rng.integers(len(paths)))]) as tile:
                tiles.append((tile.convert("RGB"), int(label)))
        with Image.open(backgrounds[int(rng.integers(len(backgrounds)))]) as background:
            canvas, placed = _compose(
                background.convert("RGB"), tiles, rng, options.image_size, options.scale_range
            )
        file_name = f"{IMAGES}/{image_id:06d}.jpg"
        canvas.save(out / file_name, quality=95)
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": options.image_size,
                "height": options.image_size,
            }
        )
        for (y0, x0, y1, x1), label in placed:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": c} for i, c in enumerate(options.classes)]
    data = {"images": images, "annotations": annotations, "categories": categories}
    files.write_json(out / ANNOTATIONS, data)
    return len(annotations)


def synthesize(output, objects=DEFAULT_OBJECTS, backgrounds=DEFAULT_BACKGROUNDS, options=None):
    """Makes a detection folder (``train/`` and ``val/``, the layout :func:`read_folder`
    reads) of real CIFAR-10 objects on real Imagenette backgrounds.

    Each image is the center square of a background resized to ``image_size``, with
    ``objects_per_image`` CIFAR-10 images of ``classes`` (each a 32x32 photograph of the
    object, scaled by a factor drawn from ``scale_range``) pasted at random places where they
    do not overlap; their boxes are the pasted squares. ``train`` takes CIFAR-10's training
    images on Imagenette's training backgrounds, ``val`` CIFAR-10's test images on
    Imagenette's validation backgrounds. The same options and seed give the same files.

    Args:
        output: the folder to write (made if missing; existing splits are overwritten).
        objects: CIFAR-10 as ``train|test/<class>/*.jpg``: a folder, or the ``.tgz``.
        backgrounds: Imagenette as ``train|val/<wnid>/*``: a folder, or the ``.tgz``.
        options: a :class:`SynthesisOptions`.

    Returns:
        ``{split: number of boxes}``.
    """
    import contextlib

    options = options or SynthesisOptions()
    options.check()
    output = pathlib.Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"`output` is a file, not a folder. Received: output={str(output)!r}")
    rng = np.random.default_rng(options.seed)
    counts = {}
    with contextlib.ExitStack() as stack:
        objects_root = _source_root(objects, stack)
        backgrounds_root = _source_root(backgrounds, stack)
        for split, count in (("train", options.train_images), ("val", options.val_images)):
            objects_split, backgrounds_split = SOURCE_SPLITS[split]
            background_files = _files(_find_split(backgrounds_root, backgrounds_split))
            if not background_files:
                raise ValueError(f"{backgrounds} has no {backgrounds_split!r} images.")
            sources = (_find_split(objects_root, objects_split), background_files)
            counts[split] = _write_split(output, split, count, sources, options, rng)
    return counts


# ---------------------------------------------------------------------------------------------
# Command line


def _pair(kind):
    def parse(text):
        try:
            low, high = (kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected two numbers LOW,HIGH, got {text!r}"
            ) from None
        return low, high

    return parse


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m training.detection_data",
        description="Makes a small detection set (images + COCO JSON, train and val splits) "
        "from real CIFAR-10 objects on real Imagenette backgrounds, offline.",
    )
    parser.add_argument("--output", required=True, help="the folder to write")
    parser.add_argument("--objects", default=str(DEFAULT_OBJECTS), help="CIFAR-10 folder or .tgz")
    parser.add_argument(
        "--backgrounds", default=str(DEFAULT_BACKGROUNDS), help="Imagenette folder or .tgz"
    )
    defaults = SynthesisOptions()
    parser.add_argument("--train_images", type=int, default=defaults.train_images)
    parser.add_argument("--val_images", type=int, default=defaults.val_images)
    parser.add_argument(
        "--classes", default=",".join(defaults.classes), help="CIFAR-10 classes, comma-separated"
    )
    parser.add_argument("--image_size", type=int, default=defaults.image_size)
    parser.add_argument(
        "--objects_per_image",
        type=_pair(int),
        default=defaults.objects_per_image,
        help="LOW,HIGH objects per image",
    )
    parser.add_argument(
        "--scale_range",
        type=_pair(float),
        default=defaults.scale_range,
        help="LOW,HIGH: each 32-pixel object is scaled by a factor in this range",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser.parse_args(argv)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    options = SynthesisOptions(
        train_images=args.train_images,
        val_images=args.val_images,
        classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()),
        image_size=args.image_size,
        objects_per_image=args.objects_per_image,
        scale_range=args.scale_range,
        seed=args.seed,
    )
    try:
        counts = synthesize(args.output, args.objects, args.backgrounds, options)
    except (ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    for split, boxes in counts.items():
        count = getattr(options, f"{split}_images")
        print(f"{os.path.join(args.output, split)}: {count} images, {boxes} boxes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
