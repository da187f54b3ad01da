"""ImageNet input normalisation and label decoding, keras.applications style."""

import json
import os

import numpy as np

from ghostnet_keras.constants import IMAGENET_MEAN, IMAGENET_STD

_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.json")
_CLASSES = None


def preprocess_input(x, data_format=None):
    """Normalises RGB images with values in [0, 255] for a model built with
    ``include_preprocessing=False``: ``(x / 255 - mean) / std`` per channel.

    Models built with ``include_preprocessing=True`` (the default) do this in
    their graph and take the 0-255 images as they are.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"Only channels_last images are supported. Received: data_format={data_format!r}"
        )
    x = np.asarray(x, dtype="float32")
    return (x / 255.0 - np.array(IMAGENET_MEAN, "float32")) / np.array(IMAGENET_STD, "float32")


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into ``(wordnet_id, class_name, score)`` tuples.

    Args:
        preds: an array of shape ``(batch, 1000)`` (or 1001, with a background
            class first, as some TFLite models have).
        top: how many of the best guesses to return per image (1 to 1000).

    Returns:
        A list (one per image) of lists of ``top`` tuples, best first.
    """
    global _CLASSES
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] not in (1000, 1001):
        raise ValueError(
            "`decode_predictions` expects a batch of predictions of shape (samples, 1000). "
            f"Received: preds.shape={preds.shape}"
        )
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
        raise ValueError(f"`top` must be an integer from 1 to 1000. Received: top={top!r}")
    if _CLASSES is None:
        with open(_CLASSES_FILE) as f:
            _CLASSES = json.load(f)
    offset = preds.shape[1] - 1000
    results = []
    for row in preds:
        best = np.argsort(row[offset:])[::-1][:top]
        results.append([(*_CLASSES[i], float(row[offset + i])) for i in best])
    return results
