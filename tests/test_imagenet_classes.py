"""The ImageNet-1k class list behind `decode_predictions`."""

import json

import numpy as np
import pytest

from ghostnet_keras import decode_predictions
from ghostnet_keras.imagenet import _CLASSES_FILE

# The ten Imagenette classes: WordNet id -> (ImageNet-1k index, first WordNet lemma).
IMAGENETTE = {
    "n01440764": (0, "tench"),
    "n02102040": (217, "English springer"),
    "n02979186": (482, "cassette player"),
    "n03000684": (491, "chain saw"),
    "n03028079": (497, "church"),
    "n03394916": (566, "French horn"),
    "n03417042": (569, "garbage truck"),
    "n03425413": (571, "gas pump"),
    "n03445777": (574, "golf ball"),
    "n03888257": (701, "parachute"),
}


def test_class_file_is_the_standard_order():
    with open(_CLASSES_FILE) as f:
        classes = json.load(f)
    assert len(classes) == 1000
    wnids = [wnid for wnid, _ in classes]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert classes[0] == ["n01440764", "tench"]
    assert classes[207] == ["n02099601", "golden retriever"]
    assert classes[999] == ["n15075141", "toilet tissue"]
    assert all(isinstance(name, str) and name for _, name in classes)


@pytest.mark.parametrize("wnid", sorted(IMAGENETTE))
def test_decode_one_hot(wnid):
    index, name = IMAGENETTE[wnid]
    preds = np.zeros((2, 1000), "float32")
    preds[0, index] = 1.0
    preds[1, (index + 1) % 1000] = 0.7
    preds[1, index] = 0.2
    first, second = decode_predictions(preds, top=3)
    assert first[0] == (wnid, name, 1.0)
    assert len(first) == 3 and all(score == 0.0 for _, _, score in first[1:])
    assert second[1][:2] == (wnid, name) and second[1][2] == pytest.approx(0.2)


def test_decode_skips_background_class():
    preds = np.zeros((1, 1001), "float32")
    preds[0, 1 + 574] = 1.0  # a TFLite-style output with a background class first
    assert decode_predictions(preds, top=1) == [[("n03445777", "golf ball", 1.0)]]


def test_imagenette_folders_are_imagenet_classes(imagenette_dir):
    with open(_CLASSES_FILE) as f:
        index = {wnid: i for i, (wnid, _) in enumerate(json.load(f))}
    folders = sorted(p.name for p in (imagenette_dir / "val").iterdir() if p.is_dir())
    assert folders == sorted(IMAGENETTE)
    assert {w: index[w] for w in folders} == {w: IMAGENETTE[w][0] for w in folders}
