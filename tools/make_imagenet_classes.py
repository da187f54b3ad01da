"""Writes ``ghostnet_keras/imagenet_classes.json``: the 1000 ImageNet-1k classes in
their standard order, as ``[wordnet_id, short_name]`` pairs.

The class order (sorted WordNet ids) and the WordNet lemmas come from the data
files that timm ships under ``timm/data/_info``; the short name is the first lemma
of each synset. Run once with timm installed:

    python tools/make_imagenet_classes.py
"""

import json
import pathlib
import sys


def main():
    try:
        import timm
    except ImportError:
        sys.exit("error: timm is needed to read its ImageNet class files (pip install timm)")
    info = pathlib.Path(timm.__file__).parent / "data" / "_info"
    wnids = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = {}
    for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines():
        wnid, _, names = line.partition("\t")
        lemmas[wnid] = names.split(",")[0].strip()
    if len(wnids) != 1000 or wnids != sorted(wnids) or len(set(wnids)) != 1000:
        sys.exit("error: expected 1000 distinct, sorted ImageNet-1k WordNet ids")
    classes = [[wnid, lemmas[wnid]] for wnid in wnids]
    out = pathlib.Path(__file__).resolve().parents[1] / "ghostnet_keras" / "imagenet_classes.json"
    out.write_text("[\n" + ",\n".join(json.dumps(pair) for pair in classes) + "\n]\n")
    print(f"wrote {len(classes)} classes to {out}")


if __name__ == "__main__":
    main()
