"""C-GhostNet: exact sizes, shapes at any input size, save/load, export, training."""

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import profile

# Paper Table 8 / the reference implementations (architecture.md section 1).
EXACT = {
    "ghostnet_050": (2_587_292, 42_328_152),
    "ghostnet_100": (5_182_508, 141_150_512),
    "ghostnet_130": (7_358_820, 227_003_256),
}


@pytest.fixture(scope="module")
def registry_models():
    """The three registry C-GhostNets, built once with their defaults."""
    return {name: ghostnet_keras.create_model(name) for name in sorted(EXACT)}


@pytest.fixture(scope="module")
def ghostnet_050_64():
    """C-GhostNet-0.5x at 64x64 with 7 classes and logits, for the save/load/export tests
    (which do not change it)."""
    return ghostnet_keras.GhostNet050(
        input_shape=(64, 64, 3), classes=7, classifier_activation=None
    )


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_params_and_macs(name, registry_models):
    stats = profile(registry_models[name], input_shape=224)
    assert (stats["params"], stats["macs"]) == EXACT[name]


def test_builders_match_registry(registry_models):
    for builder, name in [
        (ghostnet_keras.GhostNet050, "ghostnet_050"),
        (ghostnet_keras.GhostNet100, "ghostnet_100"),
        (ghostnet_keras.GhostNet130, "ghostnet_130"),
    ]:
        assert ghostnet_keras.registry.get_builder(name) is builder
        assert builder.__name__ == builder.__qualname__ == f"GhostNet{name[-3:]}"
        model = registry_models[name]
        assert model.name == name
        assert profile(model)["params"] == EXACT[name][0]
    assert ghostnet_keras.GhostNet(width=1.0).count_params() == (
        registry_models["ghostnet_100"].count_params()
    )


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.0, 1.3, 2.0])
def test_every_width_builds_and_profiles(width):
    model = ghostnet_keras.GhostNet(width=width)
    stats = profile(model)
    last = ghostnet_keras.blocks.make_divisible(960 * width)
    assert model.get_layer("blocks_9_conv").output.shape[-1] == last
    assert model.output_shape == (None, 1000)
    # The head (last -> 1280 + bias) and classifier (1280 -> 1000 + bias) are not scaled.
    assert stats["params"] > last * 1280 + 1280 + 1280 * 1000 + 1000
    assert stats["macs"] > 0 and stats["activations"] > 0


def test_make_divisible_matches_reference_rounding():
    md = ghostnet_keras.blocks.make_divisible
    assert [md(v) for v in (16 * 0.5, 72 * 0.25, 120 * 0.25, 480 * 0.25, 960 * 0.25)] == [
        8,
        20,
        32,
        120,
        240,
    ]
    assert md(18 * 1.0) == 20  # int(18 + 2) // 4 * 4
    assert md(1) == 4  # never below the divisor
    assert md(35, 8) == 32  # nearest multiple
    assert md(11, 8) == 16  # 8 would lose more than 10%


@pytest.mark.parametrize(
    "pooling, shape", [(None, (None, 7, 7, 960)), ("avg", (None, 960)), ("max", (None, 960))]
)
def test_no_top_features(pooling, shape):
    model = ghostnet_keras.GhostNet100(
        include_top=False, input_shape=(224, 224, 3), pooling=pooling
    )
    assert model.output_shape == shape
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (1, *shape[1:])


def test_no_top_default_is_any_size():
    model = ghostnet_keras.GhostNet050(include_top=False)
    assert model.input_shape == (None, None, None, 3)
    assert model.output_shape == (None, None, None, 480)


@pytest.mark.parametrize("size", [32, 224, 320])
def test_forward_at_any_input_size(size):
    model = ghostnet_keras.GhostNet100(input_shape=(size, size, 3), classes=10)
    x = np.random.default_rng(size).uniform(0, 255, (2, size, size, 3)).astype("float32")
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("blocks_9_relu").output.shape[1] == -(-size // 32)


def test_multi_scale_features():
    backbone = ghostnet_keras.GhostNet100(include_top=False)
    features = ghostnet_keras.feature_extractor(backbone)
    assert ghostnet_keras.feature_layer_names(backbone) == [
        "blocks_2_0_add",
        "blocks_4_0_add",
        "blocks_6_4_add",
        "blocks_9_relu",
    ]
    x = np.zeros((1, 256, 256, 3), "float32")
    outs = features.predict(x, verbose=0)
    assert [o.shape for o in outs] == [
        (1, 64, 64, 24),
        (1, 32, 32, 40),
        (1, 16, 16, 112),
        (1, 8, 8, 960),
    ]
    with pytest.raises(ValueError, match=r"Received: strides=\(64,\)"):
        ghostnet_keras.feature_extractor(backbone, strides=(64,))


def _small_cnn_layers():
    return [
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1"),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2"),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c3"),
    ]


def test_feature_extractor_on_sequential_and_functional():
    """A Sequential CNN gives the same features as the Functional model of its layers."""
    sequential = keras.Sequential([keras.Input((64, 64, 3)), *_small_cnn_layers()], name="seq")
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for layer in _small_cnn_layers():
        x = layer(x)
    functional = keras.Model(inputs, x)
    functional.set_weights(sequential.get_weights())
    strides = (2, 4, 8)
    assert ghostnet_keras.feature_layer_names(sequential, strides) == ["c1", "c2", "c3"]
    assert ghostnet_keras.feature_layer_names(functional, strides) == ["c1", "c2", "c3"]
    images = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    ours = ghostnet_keras.feature_extractor(sequential, strides).predict(images, verbose=0)
    theirs = ghostnet_keras.feature_extractor(functional, strides).predict(images, verbose=0)
    assert [o.shape for o in ours] == [(2, 32, 32, 8), (2, 16, 16, 16), (2, 8, 8, 16)]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_feature_extractor_rejects_what_it_cannot_cut():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, strides=2)

        def call(self, x):
            return self.conv(x)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"Functional model, or a Sequential.*model=Subclassed$"):
        ghostnet_keras.feature_extractor(subclassed)
    unbuilt = keras.Sequential(_small_cnn_layers())
    with pytest.raises(ValueError, match=r"start it with `keras.Input`.*Received: model="):
        ghostnet_keras.feature_extractor(unbuilt)


def test_preprocessing_in_graph_equals_preprocess_input(ghostnet_050_64):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    with_pre = ghostnet_050_64
    without = ghostnet_keras.GhostNet050(
        input_shape=(64, 64, 3), include_preprocessing=False, classifier_activation=None, classes=7
    )
    without.set_weights(with_pre.get_weights())
    np.testing.assert_allclose(
        with_pre.predict(images, verbose=0),
        without.predict(ghostnet_keras.preprocess_input(images), verbose=0),
        atol=1e-4,
    )
    normalised = ghostnet_keras.preprocess_input(np.full((1, 1, 1, 3), 255.0))
    np.testing.assert_allclose(
        normalised.ravel(),
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
        rtol=1e-6,
    )


def test_keras_save_load_safe_mode(tmp_path, ghostnet_050_64):
    model = ghostnet_050_64
    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    path = tmp_path / "ghostnet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]


def test_weights_file_round_trip(tmp_path, ghostnet_050_64):
    model = ghostnet_050_64
    path = tmp_path / "g.weights.h5"
    model.save_weights(path)
    again = ghostnet_keras.GhostNet050(input_shape=(64, 64, 3), classes=7, weights=str(path))
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_export_saved_model(tmp_path, ghostnet_050_64):
    import tensorflow as tf

    model = ghostnet_050_64
    model.export(str(tmp_path / "saved"), verbose=False)
    x = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    loaded = tf.saved_model.load(str(tmp_path / "saved"))  # keep a reference: it owns the variables
    served = loaded.serve(x).numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-5)


def test_one_training_step_changes_weights_and_bn_statistics():
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.GhostNet050(input_shape=(32, 32, 3), classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = {w.path: np.array(w) for w in model.weights}
    x = np.random.default_rng(4).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 10
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = {w.path: np.array(w) for w in model.weights}
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    trainable = {w.path for w in model.trainable_weights}
    moving = {w.path for w in model.non_trainable_weights if "moving" in w.path}
    assert trainable <= changed, sorted(trainable - changed)[:5]
    assert moving <= changed, sorted(moving - changed)[:5]
    # The normalisation constants in the graph are not statistics and must stay put.
    assert not any(p.startswith("preprocessing") for p in changed)
