"""`tflite.evaluate` on a `.tflite` made elsewhere: uint8 input, 1001 outputs with a
background class first, WordNet-id folders mapped to ImageNet class indices."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT, load_image_folder

pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter (ai-edge-litert) is needed")

from ghostnet_keras import imagenet  # noqa: E402
from tflite import convert, evaluate  # noqa: E402

SIZE = 32


def _imagenet_index(wnids):
    with open(imagenet._CLASSES_FILE) as f:
        order = [wnid for wnid, _ in json.load(f)]
    return np.array([order.index(w) for w in wnids])


@pytest.fixture(scope="module")
def background_model(imagenette_dir):
    """A small CNN trained on imagenette's 10 classes, whose 10 scores are written into the
    ImageNet positions of a 1001-wide output (index 0: a background logit that beats every
    class, as in the TF-slim MobileNets), saved as `.keras`; and the val images."""
    x_train, y_train = load_image_folder(imagenette_dir / "train", 120, size=SIZE)
    x_val, y_val = load_image_folder(imagenette_dir / "val", 50, size=SIZE)
    wnids = sorted(p.name for p in (imagenette_dir / "val").iterdir())
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(10)(x)
    small = keras.Model(inputs, logits)
    small.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    small.fit(x_train, y_train, epochs=12, batch_size=32, verbose=0)
    # Scatter the 10 logits into 1001 columns: other classes -20, background +30.
    scatter = np.zeros((10, 1001), "float32")
    scatter[np.arange(10), 1 + _imagenet_index(wnids)] = 1.0
    bias = np.full(1001, -20.0, "float32")
    bias[0] = 30.0
    bias[1 + _imagenet_index(wnids)] = 0.0
    wide = keras.layers.Dense(1001, trainable=False, name="imagenet_1001")
    model = keras.Model(inputs, wide(logits))
    wide.set_weights([scatter, bias])
    return model, x_val, y_val, wnids


def test_uint8_input_1001_outputs_and_wordnet_folders(background_model, imagenette_dir, tmp_path):
    model, x_val, y_val, wnids = background_model
    calibration = x_val[::5]
    flatbuffer = convert.convert_model(
        model, quantize="int8", io="uint8", representative_images=calibration
    )
    classifier = evaluate.TFLiteClassifier(flatbuffer)
    assert classifier.input_dtype == np.uint8 and classifier.background
    assert classifier.num_classes == 1000

    labels = _imagenet_index(wnids)[y_val]
    keras_top1 = (model.predict(x_val, verbose=0)[:, 1:].argmax(1) == labels).mean()
    assert keras_top1 > 0.25  # learnt something (chance: 10%, or 0.1% over ImageNet)

    result = evaluate.evaluate(classifier, [(x_val, y_val)], class_names=wnids, keras_model=model)
    assert result["images"] == len(x_val)
    assert result["keras_top1"] == pytest.approx(keras_top1)
    assert result["top1"] >= keras_top1 - 0.05
    assert result["agreement"] >= 0.9
    # Without dropping the background column, every prediction would be "background".
    unshifted = evaluate.TFLiteClassifier(flatbuffer, background="no")
    assert (unshifted.predict(x_val[:10]).argmax(1) == 0).all()

    # The command line, on the folder itself (val/<wnid>/*: resized to 32x32 by the same
    # evaluation transform as the arrays above, up to resampling).
    path = tmp_path / "foreign.tflite"
    path.write_bytes(flatbuffer)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tflite.evaluate",
            f"--tflite={path}",
            f"--data=folder:{imagenette_dir / 'val'}",
            "--num_images=200",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "uint8 input 32x32, 1000 classes, background dropped" in result.stdout
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["images"] == "200"
    assert float(lines["top-1"].rstrip("%")) > 25


def test_float_input_normalisation_and_dynamic_batch():
    # A float model that takes MobileNet-style [-1, 1] input, with a dynamic batch.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    import tensorflow as tf

    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    classifier = evaluate.TFLiteClassifier(flatbuffer, input_mean=127.5, input_std=127.5)
    assert classifier.dynamic_batch
    images = np.random.default_rng(0).uniform(0, 255, (5, SIZE, SIZE, 3)).astype("float32")
    expected = model.predict((images - 127.5) / 127.5, verbose=0)
    np.testing.assert_allclose(classifier.predict(images), expected, atol=1e-5)


def test_label_mapping():
    assert evaluate.label_mapping(["a", "b"], 2) is None
    mapping = evaluate.label_mapping(["n01440764", "n01443537", "n15075141"], 1000)
    assert mapping.tolist() == [0, 1, 999]
    with pytest.raises(ValueError, match="Received: classes="):
        evaluate.label_mapping(["cat", "dog"], 1000)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="not a TFLite model"):
        evaluate.TFLiteClassifier(path)
    with pytest.raises(ValueError, match="does not exist"):
        evaluate.TFLiteClassifier(tmp_path / "none.tflite")


def tiny_tflite(function, image_shape=(1, 8, 8, 3)):
    """The `.tflite` of ``function`` (TensorFlow ops on one float32 image batch)."""
    import tensorflow as tf

    traced = tf.function(function, input_signature=[tf.TensorSpec(image_shape, tf.float32)])
    concrete = traced.get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], traced).convert()


def _scores(x):
    """(1, 8, 8, 3) -> (1, 12): 12 class scores."""
    import tensorflow as tf

    return tf.tile(tf.reduce_mean(x, axis=[1, 2]), [1, 4])


def detection(x):
    """Two outputs, as an object detector's: boxes (1, 10, 4) and scores (1, 10)."""
    import tensorflow as tf

    scores = _scores(x)
    return tf.reshape(tf.tile(scores, [1, 4])[:, :40], [1, 10, 4]), scores[:, :10]


NOT_CLASSIFIERS = {
    "detection": (detection, "it has 2 outputs (1, 10, 4) and (1, 10),"),
    "segmentation": (lambda x: x * 2.0, "it has 1 output (1, 8, 8, 3),"),  # 192 "classes"
    "one_score": (lambda x: _scores(x)[:, :1], "it has 1 output (1, 1),"),
    "labels": (lambda x: _cast_int(_scores(x)), "it has 1 output (1, 12) int32,"),
}


def _cast_int(scores):
    import tensorflow as tf

    return tf.cast(scores, tf.int32)


@pytest.mark.parametrize("kind", list(NOT_CLASSIFIERS))
def test_a_file_that_is_not_a_classifier_is_refused(kind, tmp_path):
    function, has = NOT_CLASSIFIERS[kind]
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(tiny_tflite(function))
    with pytest.raises(ValueError) as info:
        evaluate.TFLiteClassifier(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a classifier: {has}"), message
    assert message.endswith(f"Received: tflite='{path}'")


def test_classifier_outputs_batch_by_classes_or_classes():
    images = np.random.default_rng(0).uniform(0, 255, (3, 8, 8, 3)).astype("float32")
    expected = np.tile(images.mean(axis=(1, 2)), [1, 4])
    for function in (_scores, lambda x: _scores(x)[0]):  # (1, 12) and (12,)
        classifier = evaluate.TFLiteClassifier(tiny_tflite(function))
        assert classifier.num_classes == 12
        np.testing.assert_allclose(classifier.predict(images), expected, rtol=1e-5)


def _damaged(whole):
    """Damaged copies of a `.tflite` file: name -> bytes."""
    from ai_edge_litert.interpreter import Interpreter

    output = Interpreter(model_content=whole).get_output_details()[0]["name"].encode()
    name = whole.replace(output, b"\xfa" + output[1:])  # a tensor name, no longer UTF-8
    assert name != whole
    noise = bytearray(np.random.default_rng(0).integers(0, 256, len(whole), np.uint8))
    noise[4:8] = b"TFL3"  # the identifier, then random bytes
    return {"truncated": whole[: len(whole) // 2], "name": name, "noise": bytes(noise)}


def test_a_damaged_file_or_a_folder_is_named(tmp_path):
    for kind, content in _damaged(tiny_tflite(_scores)).items():
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(content)
        with pytest.raises(ValueError) as info:
            evaluate.TFLiteClassifier(path)
        message = str(info.value)
        assert message.startswith(f"{path} is damaged or not a TFLite model: LiteRT cannot "), (
            kind,
            message,
        )
        assert message.endswith(f"Received: tflite='{path}'") and "\n" not in message
    with pytest.raises(ValueError, match="is a folder, not a .tflite file. Received: tflite="):
        evaluate.TFLiteClassifier(tmp_path)


def test_the_conversion_check_compares_any_output():
    # tflite.convert's check after converting: a feature extractor is no classifier, and
    # its file is still compared with Keras (a valid command never fails on it).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=8)(inputs))  # (1, 4, 4, 4)
    flatbuffer = convert.convert_model(model)
    with pytest.raises(ValueError, match="is not a classifier: it has 1 output"):
        evaluate.TFLiteClassifier(flatbuffer)
    images = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
    result = evaluate.check_conversion(model, flatbuffer, [(images, None)])
    assert result["images"] == 3 and result["max_abs_diff"] < 1e-3
