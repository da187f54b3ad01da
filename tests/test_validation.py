"""Every bad argument raises a ValueError naming it and ending with `Received: ...`."""

import functools

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import GhostNet, GhostNet100, regnet, resnet

CASES = [
    # (kwargs, the pattern the message must end with)
    (dict(weights="imagenet_v2"), r"Received: weights='imagenet_v2'$"),
    (dict(weights=3), r"Received: weights=3$"),
    (dict(weights="/no/such/file.weights.h5"), r"Received: weights='/no/such/file.weights.h5'$"),
    (dict(weights="imagenet", classes=10), r"Received: classes=10$"),
    (dict(input_shape=(31, 224, 3)), r"Received: input_shape=\(31, 224, 3\)$"),
    (dict(input_shape=(16, 16, 3), include_top=False), r"Received: input_shape=\(16, 16, 3\)$"),
    (dict(input_shape=(224, 224)), r"Received: input_shape=\(224, 224\)$"),
    (
        dict(input_shape=(224, 224, 1), weights="imagenet"),
        r"Received: input_shape=\(224, 224, 1\)$",
    ),
    (dict(input_shape=(64, 64, 1)), r"Received: input_shape=\(64, 64, 1\)$"),
    (dict(input_shape=(224, 224, None)), r"Received: input_shape=\(224, 224, None\)$"),
    (dict(input_shape="big"), r"Received: input_shape='big'$"),
    (dict(width=0), r"Received: width=0$"),
    (dict(width=-0.5), r"Received: width=-0.5$"),
    (dict(width="wide"), r"Received: width='wide'$"),
    (dict(include_top=False, pooling="mean"), r"Received: pooling='mean'$"),
    (dict(classes=0), r"Received: classes=0$"),
    (dict(classes=2.5), r"Received: classes=2.5$"),
    (dict(classifier_activation="softmaxx"), r"Received: classifier_activation='softmaxx'$"),
    (
        dict(input_tensor=np.zeros((1, 224, 224, 3))),
        r"Received: input_tensor=<ndarray of shape \(1, 224, 224, 3\)>$",
    ),
    (
        dict(input_tensor=keras.Input((64, 64, 3)), input_shape=(128, 128, 3)),
        r"Received: input_shape=\(128, 128, 3\)$",
    ),
    # Width 0.75 has no published ImageNet weights: the error names the models that do.
    (dict(width=0.75, weights="imagenet"), r"Received: weights='imagenet'$"),
]


@pytest.mark.parametrize("kwargs, pattern", CASES, ids=[str(sorted(c[0])) for c in CASES])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as err:
        GhostNet(**kwargs)
    # The message names the argument it is about.
    named = set(kwargs) if "input_tensor" not in kwargs else {"input_tensor", "input_shape"}
    assert any(f"`{arg}`" in str(err.value) or f"{arg}=" in str(err.value) for arg in named)


def test_small_input_tensor_is_rejected():
    with pytest.raises(ValueError, match=r"Received: input_tensor=<KerasTensor"):
        GhostNet100(input_tensor=keras.Input((16, 16, 3)))


def test_good_edge_cases_build():
    assert GhostNet100(input_shape=(32, 32, 3)).output_shape == (None, 1000)
    assert GhostNet100(input_shape=(None, None, 3)).output_shape == (None, 1000)
    assert (
        GhostNet100(
            include_top=False, input_shape=(64, 64, 1), include_preprocessing=False
        ).output_shape[-1]
        == 960
    )
    assert GhostNet100(classifier_activation=None).get_layer("predictions").activation(
        np.array([-1.0])
    ) == np.array([-1.0])
    inputs = keras.Input((96, 96, 3))
    model = GhostNet100(input_tensor=inputs, include_top=False, pooling="avg")
    assert model.inputs[0] is inputs and model.output_shape == (None, 960)
    assert GhostNet(width=1, dropout_rate=0.0).get_layer("classifier").units == 1000


def test_registry_unknown_name_lists_close_matches():
    with pytest.raises(
        ValueError, match=r"Did you mean: ghostnet_100.*Received: name='ghostnet100'$"
    ):
        ghostnet_keras.create_model("ghostnet100")
    with pytest.raises(ValueError, match=r"Received: name='resnet9000'$"):
        ghostnet_keras.create_model("resnet9000")


def test_registry_lists_and_creates():
    names = ghostnet_keras.list_models()
    assert {"ghostnet_050", "ghostnet_100", "ghostnet_130"} <= set(names)
    assert names == sorted(names)
    assert ghostnet_keras.list_models("ghostnet_1*") == ["ghostnet_100", "ghostnet_130"]
    assert ghostnet_keras.list_models("ghostnet_1") == [
        "g_ghostnet_100",
        "g_ghostnet_130",
        "ghostnet_100",
        "ghostnet_130",
    ]
    assert ghostnet_keras.list_models("no_such*") == []
    model = ghostnet_keras.create_model("ghostnet_050", classes=3, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 3)


def test_profile_validation():
    with pytest.raises(ValueError, match=r"Received: model='ghostnet_100'$"):
        ghostnet_keras.profile("ghostnet_100")
    with pytest.raises(ValueError, match=r"Received: input_shape=\(224, 224\)$"):
        ghostnet_keras.profile(GhostNet100(), input_shape=(224, 224))


def test_decode_predictions_validation():
    with pytest.raises(ValueError, match=r"Received: preds.shape=\(2, 10\)$"):
        ghostnet_keras.decode_predictions(np.zeros((2, 10)))


# --- One skeleton: the same validation for every family ------------------------------------

# One builder of each family (the fixed builders and the family functions go through the
# same skeleton).
# One model without published ImageNet weights per family (those with weights: test_pretrained).
FAMILIES = {
    "ghostnet": functools.partial(GhostNet, width=0.75),
    "g_ghostnet": ghostnet_keras.GGhostNet050,
    "resnet": ghostnet_keras.ResNet56,
    "regnet": functools.partial(regnet.regnetx, ((1, 1, 1, 1), (32, 64, 96, 128), 16)),
    "vgg": ghostnet_keras.vgg16_cifar,
}
EVERY_FAMILY_CASES = [
    # include_preprocessing normalises RGB: only C-GhostNet checked it before the skeleton.
    (dict(input_shape=(64, 64, 1)), r"3 \(RGB\) channels.*Received: input_shape=\(64, 64, 1\)$"),
    (dict(dropout_rate=1.5), r"Received: dropout_rate=1.5$"),
    (dict(dropout_rate=-0.1), r"Received: dropout_rate=-0.1$"),
    (dict(classes=0), r"Received: classes=0$"),
    # An unbounded head (10**9 classes) would grow until the process is killed.
    (dict(classes=100_001), r"at most 100,000\. Received: classes=100001$"),
    (dict(include_top=False, pooling="mean"), r"Received: pooling='mean'$"),
    (dict(weights="imagenet"), r"No ImageNet weights.*Received: weights='imagenet'$"),
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    "kwargs, pattern", EVERY_FAMILY_CASES, ids=[str(c[0]) for c in EVERY_FAMILY_CASES]
)
def test_every_family_validates_alike(family, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        FAMILIES[family](**kwargs)


@pytest.mark.parametrize("width", [float("inf"), float("nan"), True, 100.0, 4.01])
def test_width_must_be_finite(width):
    # 100.0 grew past 23 GB before the kernel killed it: refused before anything is built.
    builders = (GhostNet, ghostnet_keras.GGhostNet, ghostnet_keras.GhostNetV2)
    for builder in (*builders, ghostnet_keras.GhostNetV3):
        with pytest.raises(ValueError, match=rf"Received: width={width}$"):
            builder(width=width)


@pytest.mark.parametrize(
    "build, pattern",
    [
        # 4x the largest published stage: RegNetX-16GF's 2,048 channels, RegNetX-3.2GF's 15 blocks.
        (lambda: regnet.regnetx(((1, 1, 1, 1), (32, 64, 96, 8193), 16)), "8192 channels"),
        (lambda: regnet.regnetx(((61, 1, 1, 1), (32, 64, 96, 128), 16)), "60 blocks"),
        (lambda: regnet.regnetx(((), (), 16)), "positive integers"),
        (lambda: resnet.resnet(("basic", (1, 1, 1), (16, 32, 10**6), "cifar")), "8192"),
        (lambda: resnet.resnet(("basic", (1, -1, 1), (16, 32, 64), "cifar")), "positive"),
        (lambda: ghostnet_keras.ghost_vgg16_cifar(dw_size=16), "from 1 to 15"),
    ],
)
def test_custom_sizes_are_bounded(build, pattern):
    # Sizes beyond any published model are refused before a layer is built, as a width is.
    with pytest.raises(ValueError, match=rf"{pattern}.*Received: (config|dw_size)="):
        build()


def test_reparameterize_needs_a_model():
    for value in (None, "ghostnetv3_100", np.zeros((2, 2))):
        with pytest.raises(ValueError, match=r"`model` must be a Keras model.*Received: model="):
            ghostnet_keras.reparameterize(value)


def test_create_model_names_unknown_arguments():
    with pytest.raises(ValueError) as err:
        ghostnet_keras.create_model("ghostnet_050", clases=10, widht=0.5)
    message = str(err.value)
    assert "'clases', 'widht'" in message
    assert "it takes: include_top, weights," in message and "name" in message
    assert message.endswith("Received: clases=10, widht=0.5")


def test_decode_predictions_top_must_be_positive():
    preds = np.zeros((1, 1000), "float32")
    for top in (-1, 0, 1001, 2.5):
        with pytest.raises(ValueError, match=rf"Received: top={top}$"):
            ghostnet_keras.decode_predictions(preds, top=top)
    assert len(ghostnet_keras.decode_predictions(preds, top=1000)[0]) == 1000


def test_weights_that_is_a_directory(tmp_path):
    with pytest.raises(ValueError, match=r"is a directory.*Received: weights="):
        GhostNet100(weights=str(tmp_path))


@pytest.fixture(scope="module")
def ghostnet_050_weights(tmp_path_factory):
    """A real `.weights.h5` of C-GhostNet-0.5x (10 classes)."""
    path = tmp_path_factory.mktemp("weights") / "ghostnet_050.weights.h5"
    ghostnet_keras.GhostNet050(classes=10, input_shape=(32, 32, 3)).save_weights(path)
    return path


def test_truncated_weights_file_is_named(ghostnet_050_weights, tmp_path):
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(ghostnet_050_weights.read_bytes()[:200_000])
    with pytest.raises(ValueError) as err:
        GhostNet(width=0.5, classes=10, weights=truncated)
    message = str(err.value)
    assert "`weights` file cannot be read" in message and "truncated" in message
    assert message.endswith(f"Received: weights={str(truncated)!r}")


def test_weights_of_another_width_give_one_clear_error(ghostnet_050_weights, recwarn):
    with pytest.raises(ValueError) as err:
        GhostNet(width=1.0, weights=ghostnet_050_weights, input_shape=(32, 32, 3))
    message = str(err.value)
    assert len(recwarn) == 0  # no flood of UserWarnings
    assert "does not fit model 'ghostnet_100'" in message
    # The first mismatching layer, with both shapes; no tensor values.
    assert "first: stem_conv (model (3, 3, 3, 16), file (3, 3, 3, 8))" in message
    assert "The file fits ghostnet_050 (up to the number of classes)" in message
    assert "value=" not in message and len(message) < 1000
    assert message.endswith(f"Received: weights={str(ghostnet_050_weights)!r}")


def test_weights_with_other_classes_name_the_classifier(ghostnet_050_weights):
    with pytest.raises(
        ValueError,
        match=r"1 of its \d+ layers with weights differ, first: "
        r"classifier \(model \(1280, 1000\), \(1000,\), file \(1280, 10\), "
        r"\(10,\)\)",
    ):
        ghostnet_keras.GhostNet050(weights=ghostnet_050_weights, input_shape=(32, 32, 3))


def test_backbone_loads_from_the_same_model_saved_with_its_top(ghostnet_050_weights):
    # Issue 23: it said "a file of another model"; the backbone now loads, layer by name.
    full = ghostnet_keras.GhostNet050(
        classes=10, input_shape=(32, 32, 3), weights=ghostnet_050_weights
    )
    backbone = ghostnet_keras.GhostNet050(
        include_top=False, pooling="avg", weights=ghostnet_050_weights
    )
    assert "classifier" not in [layer.name for layer in backbone.layers]
    for name in ("stem_conv", "blocks_9_conv"):  # random kernels: equal only if loaded
        for mine, saved in zip(
            backbone.get_layer(name).get_weights(),
            full.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(mine, saved)
