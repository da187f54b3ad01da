"""The model library on any Keras backend: what `.ci/jax` runs with JAX and no TensorFlow.

Builds, predict, profile, the safe-mode `.keras` round trip, a weights file, ghostify,
feature_extractor and a few `fit` steps, on small inputs. Under the TensorFlow backend the
other test files prove the same (with TensorFlow-only checks besides), so this file runs only
under another backend: `KERAS_BACKEND=jax .ci/jax`, or `KERAS_BACKEND=torch python -m pytest
tests/test_backends.py` here.
"""

import sys

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import regnet, resnet

pytestmark = pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="the backend-agnostic selection runs under JAX or PyTorch (.ci/jax)",
)

SIZE = 32
# C-GhostNet-0.5x with 5 classes: the paper's 2,587,292 parameters less the 1000-class
# classifier (1280 x 1000 + 1000) plus a 5-class one (1280 x 5 + 5).
GHOSTNET_050_5_CLASSES = 2_587_292 - 1_281_000 + 6_405


def _images(n=2, seed=0, size=SIZE):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _tiny_resnet(**kwargs):
    """A Ghost-ResNet (every conv a C-Ghost module) with the ImageNet stem (strides 4, 8,
    16), built in a second or two."""
    return resnet.resnet(("basic", (1, 1, 1), (8, 16, 32), "imagenet"), conv_ratio=2, **kwargs)


# One model of each family; those of the registry are small enough to build quickly here, the
# others are the same builders at a tiny size (the RegNetX one has a G-Ghost stage with mix).
BUILDERS = {
    "ghostnet": lambda: ghostnet_keras.GhostNet050(classes=5, input_shape=(SIZE, SIZE, 3)),
    "resnet": lambda: _tiny_resnet(classes=5, input_shape=(SIZE, SIZE, 3)),
    "regnet": lambda: regnet.regnetx(((1, 3), (16, 24), 8), classes=5, input_shape=(64, 64, 3)),
    "vgg": lambda: ghostnet_keras.ghost_vgg16_cifar(ratio=4, classes=5),
}


@pytest.fixture(scope="module")
def ghostnet_050():
    return BUILDERS["ghostnet"]()


def test_no_tensorflow_loaded():
    assert "tensorflow" not in sys.modules


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_build_predict_profile(family, ghostnet_050):
    model = ghostnet_050 if family == "ghostnet" else BUILDERS[family]()
    size = model.input_shape[1]
    y = model.predict(_images(size=size), verbose=0)
    assert y.shape == (2, 5)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    stats = ghostnet_keras.profile(model)
    assert stats["params"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert stats["macs"] > 0 and stats["input_shape"] == (size, size, 3)
    if family == "ghostnet":  # the paper's count does not depend on the backend
        assert stats["params"] == GHOSTNET_050_5_CLASSES


def test_keras_round_trip_in_safe_mode(tmp_path, ghostnet_050):
    x = _images(seed=1)
    ghostnet_050.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(ghostnet_050.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_weights_file_round_trip_and_mismatch(tmp_path):
    model = _tiny_resnet(classes=3, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / "tiny.weights.h5"
    model.save_weights(path)
    again = _tiny_resnet(classes=3, input_shape=(SIZE, SIZE, 3), weights=path)
    x = _images(seed=4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"first: classifier.*Received: weights="):
        _tiny_resnet(classes=5, weights=path)  # a C-Ghost classifier: 3 primary maps, not 2


def test_ghostify_and_round_trip(tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="a")(inputs)
    x = keras.layers.Conv2D(24, 3, padding="same", name="b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="fc")(x))
    ghost, report = ghostnet_keras.ghostify(model, return_report=True)
    assert sorted(report.converted) == ["a", "b"]
    assert report.params_after < report.params_before
    ghost.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    x = _images(seed=2)
    np.testing.assert_array_equal(ghost.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_feature_extractor():
    backbone = _tiny_resnet(include_top=False)
    features = ghostnet_keras.feature_extractor(backbone, strides=(4, 8, 16))
    outs = features.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)
    assert [o.shape for o in outs] == [(1, 16, 16, 8), (1, 8, 8, 16), (1, 4, 4, 32)]


def test_a_few_fit_steps_change_weights_and_statistics():
    keras.utils.set_random_seed(0)
    model = _tiny_resnet(classes=4, input_shape=(SIZE, SIZE, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    history = model.fit(_images(8, seed=3), np.arange(8) % 4, batch_size=4, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"]).all()
    after = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert {w.path for w in model.trainable_weights} <= changed
    assert {w.path for w in model.non_trainable_weights if "moving" in w.path} <= changed
