"""``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]``: what a data set holds,
and with ``--check`` which of its images cannot be used (`check_dataset`)."""

import dataclasses
import sys

import ghostnet_keras.data.folders as folders
import ghostnet_keras.data.pipeline as pipeline
from ghostnet_keras.data.specs import DataInfo, parse_dataset


@dataclasses.dataclass
class CheckReport:
    """What `check_dataset` found.

    Attributes:
        info: the data set's `DataInfo`.
        decoded: ``{"train": n, "eval": n}``, the images of each split that decode.
        unreadable: the files that cannot be read (no permission, an I/O error).
        undecodable: the files (TFDS: the record ids) that are not decodable images.
        problems: what the folder listing warned about (broken links, FIFOs, nested
            folders, classes without usable images), one sentence each.
        hidden: the hidden entries (names starting with '.') that every listing skips;
            reported, not a problem.
    """

    info: DataInfo
    decoded: dict
    unreadable: list
    undecodable: list
    problems: list
    hidden: list

    @property
    def ok(self):
        """True if every image decodes and the listing found no problem."""
        return not (self.unreadable or self.undecodable or self.problems)


def check_dataset(spec, data_dir=None):
    """Reads and decodes every image of both splits of ``spec`` as the pipelines do; returns
    a `CheckReport` naming what training would skip and why."""
    spec = parse_dataset(spec)
    info = pipeline.dataset_info(spec, data_dir)
    decoded, unreadable, undecodable = {}, [], []
    for split in ("train", "eval"):
        decoded[split] = 0
        for name, status in pipeline.split_statuses(spec, split, data_dir):
            name = name.decode("utf-8", "replace")
            if status == pipeline.STATUS_DECODED:
                decoded[split] += 1
            elif status == pipeline.STATUS_UNREADABLE:
                unreadable.append(name)
            else:
                undecodable.append(name)
    folder = spec.kind == "folder"
    return CheckReport(
        info,
        decoded,
        unreadable,
        undecodable,
        folders.problems(spec) if folder else [],
        folders.hidden_entries(spec) if folder else [],
    )


def _shown(paths, limit=20):
    return [f"    {p}" for p in paths[:limit]] + (
        [f"    ... and {len(paths) - limit} more"] if len(paths) > limit else []
    )


def main(argv=None):
    """``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]``: prints what a data
    set holds; ``--check`` decodes every image and names the ones training would skip (and
    why: unreadable or not decodable) and the hidden entries every listing skips, and exits
    with 1 if any image or folder entry cannot be used, so that it can gate a pipeline."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ghostnet_keras.data", description=main.__doc__)
    parser.add_argument("dataset", help="a TFDS name or folder:PATH")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory")
    parser.add_argument("--check", action="store_true", help="decode every image")
    args = parser.parse_args(argv)
    try:
        info = pipeline.dataset_info(args.dataset, args.data_dir)
        report = check_dataset(args.dataset, args.data_dir) if args.check else None
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    names = ", ".join(info.class_names[:10]) + (", ..." if info.num_classes > 10 else "")
    print(f"{args.dataset}: {info.num_classes} classes ({names})")
    print(f"  {info.train_split}: {info.num_train_examples} images")
    print(f"  {info.eval_split}: {info.num_eval_examples} images")
    if report is None:
        return 0
    expected = {"train": info.num_train_examples, "eval": info.num_eval_examples}
    for split, count in report.decoded.items():
        print(f"  {split}: {count} of {expected[split]} images decode")
    out = []
    for found, what in (
        (report.unreadable, "image(s) cannot be read; training skips them"),
        (report.undecodable, "image(s) cannot be decoded; training skips them"),
        (report.problems, "problem(s) in the folder listing"),
        (report.hidden, "hidden entr(ies) skipped (names starting with '.')"),
    ):
        if found:
            out += [f"{len(found)} {what}:", *_shown(found)]
    if out:
        print("\n".join(out), flush=True)
    return 0 if report.ok else 1
