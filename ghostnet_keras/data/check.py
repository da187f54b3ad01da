"""``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]``: what a data set holds,
and with ``--check`` which of its images cannot be used."""

import sys

import ghostnet_keras.data.folders as folders
from ghostnet_keras.data.pipeline import dataset_info, make_dataset
from ghostnet_keras.data.specs import parse_dataset


def main(argv=None):
    """``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]``: prints what a data
    set holds; ``--check`` decodes every image and names the ones training would skip (and
    why: unreadable or not decodable), and exits with 1 if any image or folder entry cannot be
    used, so that it can gate a pipeline."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ghostnet_keras.data", description=main.__doc__)
    parser.add_argument("dataset", help="a TFDS name or folder:PATH")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory")
    parser.add_argument("--check", action="store_true", help="decode every image")
    args = parser.parse_args(argv)
    try:
        info = dataset_info(args.dataset, args.data_dir)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    names = ", ".join(info.class_names[:10]) + (", ..." if info.num_classes > 10 else "")
    print(f"{args.dataset}: {info.num_classes} classes ({names})")
    print(f"  {info.train_split}: {info.num_train_examples} images")
    print(f"  {info.eval_split}: {info.num_eval_examples} images")
    if not args.check:
        return 0
    bad = 0
    for split, expected in (("train", info.num_train_examples), ("eval", info.num_eval_examples)):
        ds = make_dataset(
            args.dataset,
            split,
            training=False,
            batch_size=256,
            image_size=16,
            data_dir=args.data_dir,
            cache=False,
            one_hot=False,
        )
        decoded = sum(int(labels.shape[0]) for _, labels in ds)
        bad += expected - decoded
        print(f"  {split}: {decoded} of {expected} images decode", flush=True)
    spec = parse_dataset(args.dataset)
    listing = folders.problems(spec) if spec.kind == "folder" else []
    if bad:
        print(f"{bad} image(s) cannot be decoded (named above); training skips them.")
    if listing:
        print(f"{len(listing)} problem(s) in the folder listing (named above).")
    return 1 if bad or listing else 0
