"""Every bad argument raises a ValueError naming it and ending with `Received: ...`."""

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import GhostNet, GhostNet100

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
    # Width 0.5 has no published ImageNet weights: the error names the models that do.
    (dict(width=0.5, weights="imagenet"), r"Received: weights='imagenet'$"),
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
