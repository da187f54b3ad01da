"""CIFAR-10 VGG-16 and C-Ghost-VGG-16 against the paper's Tables 4, 5 and 6."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import ghostnet_keras
from ghostnet_keras import vgg

# (s, d) -> exact trainable params and multiply-adds at 32x32 of ours, and the paper's
# Params (M) / FLOPs (M). Tolerance: 3% of the paper's number, whose last digit is rounded.
PAPER = {
    None: (14_986_698, 313_463_808, 15.0, 313),  # VGG16 row of Tables 4, 5, 6
    (2, 1): (7_642_026, 157_003_776, 7.6, 157),  # Table 4, d=1
    (2, 3): (7_658_922, 158_109_696, 7.7, 158),  # Tables 4, 5, 6: s=2, d=3 (93.7%)
    (2, 5): (7_692_714, 160_321_536, 7.7, 160),  # Table 4, d=5
    (2, 7): (7_743_402, 163_639_296, 7.7, 163),  # Table 4, d=7
    (3, 3): (5_226_924, 107_240_040, 5.2, 107),  # Table 5, s=3
    (4, 3): (3_990_810, 80_432_640, 4.0, 80),  # Table 5, s=4
    (5, 3): (3_278_145, 65_665_296, 3.3, 65),  # Table 5, s=5
}
TOLERANCE = 0.03


def _build(key, **kwargs):
    if key is None:
        return ghostnet_keras.vgg16_cifar(**kwargs)
    ratio, dw_size = key
    return ghostnet_keras.ghost_vgg16_cifar(ratio=ratio, dw_size=dw_size, **kwargs)


@pytest.mark.parametrize(
    "key", list(PAPER), ids=lambda k: "vgg16" if k is None else f"s{k[0]}d{k[1]}"
)
def test_params_and_flops_match_paper(key):
    params, macs, paper_params_m, paper_flops_m = PAPER[key]
    stats = ghostnet_keras.profile(_build(key))
    assert stats["params"] == params
    assert stats["macs"] == macs
    assert stats["params"] == pytest.approx(paper_params_m * 1e6, rel=TOLERANCE)
    assert stats["macs"] == pytest.approx(paper_flops_m * 1e6, rel=TOLERANCE)
    # The paper's rounded numbers themselves (to its last printed digit).
    assert round(stats["params"] / 1e6, 1) == paper_params_m
    assert abs(stats["macs"] / 1e6 - paper_flops_m) < 1.0


def test_ghost_vgg_is_ghostify_of_vgg():
    """The plug-and-play claim: ghostify(VGG-16) is exactly C-Ghost-VGG-16."""
    for ratio, dw_size in ((2, 3), (5, 1)):
        built = ghostnet_keras.ghost_vgg16_cifar(ratio=ratio, dw_size=dw_size)
        converted, report = ghostnet_keras.ghostify(
            ghostnet_keras.vgg16_cifar(), ratio=ratio, dw_size=dw_size, return_report=True
        )
        assert len(report.converted) == 13
        assert report.skipped == {} and report.unconvertible == {}

        def layers(model):
            return [(type(layer).__name__, layer.get_config()) for layer in model.layers]

        assert layers(converted) == layers(built)
        assert report.params_after == ghostnet_keras.profile(built)["params"]


def test_layout():
    model = ghostnet_keras.vgg16_cifar()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 128, 128] + [256] * 3 + [512] * 6
    assert all(c.kernel_size == (3, 3) and not c.use_bias for c in convs)
    assert model.get_layer("block5_pool").output.shape == (None, 1, 1, 512)
    assert model.get_layer("head").units == 512
    assert model.output_shape == (None, 10)
    ghost = ghostnet_keras.ghost_vgg16_cifar(ratio=3)
    assert ghost.get_layer("block1_1_conv_primary_conv").filters == 22  # ceil(64 / 3)
    assert ghost.get_layer("block1_1_conv_slice").stop == 64  # 3 * 22 = 66, cut to 64
    assert ghost.get_layer("block5_3_bn").output.shape == (None, 2, 2, 512)


def _train_step(model, x, y):
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer.apply(grads, model.trainable_weights)
    return float(loss)


@pytest.mark.parametrize("key", [None, (2, 3)], ids=["vgg16", "ghost"])
def test_trains_one_step(key):
    keras.utils.set_random_seed(0)
    model = _build(key)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = np.array([0, 1, 2, 3])
    first = "block1_1_conv" if key is None else "block1_1_conv_cheap_conv"
    before = model.get_layer(first).get_weights()[0].copy()
    assert np.isfinite(_train_step(model, x, y))
    assert not np.allclose(before, model.get_layer(first).get_weights()[0])


def _randomize_batch_norms(model, seed=0):
    """Non-trivial BN statistics so that the logits are O(1), not ~1e-4."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(1.0, 2.0, gamma.shape).astype("float32"),
                    rng.uniform(-0.2, 0.2, beta.shape).astype("float32"),
                    rng.uniform(-0.1, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.2, 0.5, var.shape).astype("float32"),
                ]
            )


def test_tflite_float32_matches_keras():
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs ai-edge-litert")
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.ghost_vgg16_cifar(classifier_activation=None)
    _randomize_batch_norms(model)
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = litert.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.float32 and tuple(inp["shape"]) == (1, 32, 32, 3)
    images = np.random.default_rng(0).uniform(0, 255, (3, 1, 32, 32, 3)).astype("float32")
    for x in images:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        lite = interpreter.get_tensor(out["index"])
        reference = keras.ops.convert_to_numpy(model(x, training=False))
        scale = np.abs(reference).max()
        assert scale > 0.1  # a meaningful comparison, not of near-zero logits
        np.testing.assert_allclose(lite, reference, atol=1e-4 * scale)


def test_preprocessing_in_graph():
    keras.utils.set_random_seed(0)
    with_pre = ghostnet_keras.ghost_vgg16_cifar(ratio=4)
    without = ghostnet_keras.ghost_vgg16_cifar(ratio=4, include_preprocessing=False)
    without.set_weights(with_pre.get_weights())  # Normalization has no weights of its own
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(with_pre(x, training=False)),
        keras.ops.convert_to_numpy(without(vgg.preprocess_input(x), training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    # The CIFAR-10 mean colour maps to 0, the mean plus one std to 1.
    norm = keras.Model(with_pre.input, with_pre.get_layer("preprocessing").output)
    mean = np.array(vgg.CIFAR10_MEAN) * 255
    std = np.array(vgg.CIFAR10_STD) * 255
    pixels = np.stack([np.full((32, 32, 3), mean), np.full((32, 32, 3), mean + std)])
    out = keras.ops.convert_to_numpy(norm(pixels.astype("float32")))
    np.testing.assert_allclose(out[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-5)


def test_registry_and_options():
    assert {"vgg16_cifar", "ghost_vgg16_cifar"} <= set(ghostnet_keras.list_models("vgg"))
    model = ghostnet_keras.create_model("ghost_vgg16_cifar", ratio=3, dw_size=1, classes=7)
    assert model.name == "ghost_vgg16_cifar_s3_d1"
    assert model.output_shape == (None, 7)
    assert model.get_layer("block2_1_conv_cheap_conv").kernel_size == (1, 1)
    features = ghostnet_keras.vgg16_cifar(include_top=False, pooling="avg")
    assert features.output_shape == (None, 512)
    tensor = keras.Input((64, 64, 3))
    model = ghostnet_keras.ghost_vgg16_cifar(input_tensor=tensor, include_top=False)
    assert model.inputs[0] is tensor and model.output_shape == (None, 2, 2, 512)


def test_weights_file_round_trip(tmp_path):
    model = ghostnet_keras.ghost_vgg16_cifar(ratio=5)
    path = tmp_path / "ghost_vgg.weights.h5"
    model.save_weights(path)
    loaded = ghostnet_keras.ghost_vgg16_cifar(ratio=5, weights=str(path))
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("builder", "kwargs", "message"),
    [
        ("ghost_vgg16_cifar", {"ratio": 1}, "Received: ratio=1"),
        ("ghost_vgg16_cifar", {"dw_size": 2.0}, "Received: dw_size=2.0"),
        ("ghost_vgg16_cifar", {"weights": "imagenet"}, "Received: weights='imagenet'"),
        ("vgg16_cifar", {"weights": "nowhere.h5"}, "Received: weights='nowhere.h5'"),
        ("vgg16_cifar", {"classes": 0}, "Received: classes=0"),
        ("vgg16_cifar", {"input_shape": (16, 16, 3)}, r"Received: input_shape=\(16, 16, 3\)"),
        ("vgg16_cifar", {"pooling": "sum"}, "Received: pooling='sum'"),
    ],
)
def test_bad_arguments(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(ghostnet_keras, builder)(**kwargs)
