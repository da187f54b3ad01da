"""keras-hub integration (ghostnet_keras.hub, ghostnet_keras.hub_presets): backbones with feature
pyramids for every family, safe-mode `.keras` round trips, the image classifier's logits equal to
`create_model`'s with the published weights (served offline from a `file://` origin), and
presets that `keras_hub.models.Backbone.from_preset` / `ImageClassifier.from_preset` load.

Runs under TensorFlow and JAX; the C-GhostNet weights are a PaddleClas `.pdparams` file (read
without PaddlePaddle or PyTorch), the G-Ghost RegNetX ones a `.pth` file (PyTorch needed)."""

import dataclasses
import io
import json
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import catalog, converters, pretrained
from ghostnet_keras.converters.core import expected_tensors

from conftest import ROOT

keras_hub = pytest.importorskip("keras_hub")
hub = pytest.importorskip("ghostnet_keras.hub")
from ghostnet_keras import hub_presets  # noqa: E402  (after keras_hub's check)

SIZE = 64  # the pyramid tests' image side: P1..P5 are 32, 16, 8, 4, 2
# One small network of each family (the registry's sizes are exercised with weights below).
TINY_REGNET = ((1, 1, 1, 1), (8, 16, 32, 64), 8)
TINY_RESNET = ("basic", (3, 3, 3, 3), (8, 16, 32, 64), "imagenet")  # G-Ghost: depth >= 3
FAMILY_SAMPLES = {
    "GhostNetBackbone": dict(width=0.5),
    "GhostNetV2Backbone": dict(width=0.5),
    "GhostNetV3Backbone": dict(width=0.5),
    "GGhostNetBackbone": dict(width=0.5),
    "RegNetXBackbone": dict(config=TINY_REGNET, ghost=True),
    "ResNetBackbone": dict(config=TINY_RESNET, ghost_ratio=0.5),
}


def random_checkpoint(name, seed=0):
    """The published checkpoint file of ``name`` (its converter's tensor names and shapes),
    with random values (BatchNorm variances positive), as bytes."""
    entry = pretrained.get_entry(name)
    variant = {"variant": entry.variant} if entry.variant else {}
    model = ghostnet_keras.create_model(name, input_shape=(32, 32, 3), **variant)
    rng = np.random.default_rng(seed)
    state = {}
    for tensor, shape in expected_tensors(model, converters.get(entry.converter)).items():
        positive = tensor.endswith(("_variance", "running_var"))
        state[tensor] = rng.uniform(*((0.5, 1.5) if positive else (-0.1, 0.1)), shape)
        state[tensor] = state[tensor].astype("float32")
    if entry.file_name.endswith(".pdparams"):  # PaddleClas: a plain pickle of arrays
        return pickle.dumps(state, protocol=2)
    torch = pytest.importorskip("torch", reason="a .pth checkpoint needs PyTorch")
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """Serves random checkpoints as the published ones from a ``file://`` origin, into a
    temporary Keras cache (as tests/test_pretrained.py's ``serve``, for the whole module)."""
    root = tmp_path_factory.mktemp("hub_weights")
    origin = root / "origin"
    origin.mkdir()
    published = pretrained.entries()
    served = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(pretrained.ORIGIN_ENV, origin.as_uri())
        patch.setenv("KERAS_HOME", str(root / "keras_home"))
        patch.setattr(pretrained, "entries", lambda: {**published, **served})

        def serve_(name):
            if name not in served:
                entry = published[name]
                (origin / entry.file_name).write_bytes(random_checkpoint(name))
                url = f"https://example.invalid/{entry.file_name}"
                served[name] = dataclasses.replace(entry, url=url, sha256=None)

        yield serve_


def real_images(imagenette_dir, size, count=2):
    """``count`` real images (0-255 RGB float32) of ``size`` x ``size``."""
    from conftest import load_image_folder

    images, _ = load_image_folder(imagenette_dir / "val", 1, size=size)
    return images[:count]


def normalised(images, name):
    mean, std = hub.normalization(name)
    return ((images / 255.0 - np.array(mean, "float32")) / np.array(std, "float32")).astype(
        "float32"
    )


def test_every_family_with_a_pyramid_has_its_classes():
    """The classes derive from FAMILIES: every catalogue module but VGG's has a backbone,
    every registry model with weights a backbone class, each backbone its classifier,
    preprocessor and converter, linked as keras-hub's from_preset looks them up."""
    modules = {row.module for row in catalog.MODELS.values()}
    assert {module for _, module, _ in hub.FAMILIES} == modules - set(hub.NO_BACKBONE)
    for name in catalog.weights_entries():
        assert hub.backbone_class(name).module == catalog.MODELS[name.split(".")[0]].module
    for prefix, _, _ in hub.FAMILIES:
        backbone = getattr(hub, f"{prefix}Backbone")
        classifier = getattr(hub, f"{prefix}ImageClassifier")
        assert classifier.backbone_cls is backbone
        assert classifier.preprocessor_cls.backbone_cls is backbone
        assert classifier.preprocessor_cls.image_converter_cls.backbone_cls is backbone
        assert keras.saving.get_registered_object(f"ghostnet_keras>{prefix}Backbone") is backbone
    with pytest.raises(ValueError, match="no keras-hub backbone.*Received: name='vgg16_cifar'"):
        hub.backbone_class("vgg16_cifar")


@pytest.mark.parametrize("family", sorted(FAMILY_SAMPLES))
def test_pyramid_outputs_of_each_family(family):
    """P1..P5 at strides 2 to 32 (shapes of the graph: running it is the weights tests'), P5
    the backbone's output."""
    backbone = getattr(hub, family)(**FAMILY_SAMPLES[family], image_shape=(SIZE, SIZE, 3))
    found = backbone.pyramid_outputs
    assert sorted(found) == ["P1", "P2", "P3", "P4", "P5"]
    for level in range(1, 6):
        side = SIZE // 2**level
        assert tuple(found[f"P{level}"].shape[:3]) == (None, side, side), level
    assert found["P5"] is backbone.output  # P5: the last feature map


def test_backbone_arguments_are_checked():
    with pytest.raises(ValueError, match="takes no argument 'depth'.*Received: depth=3"):
        hub.GhostNetBackbone(depth=3)
    with pytest.raises(ValueError, match="GhostNetBackbone family.*Received: model='resnet50'"):
        hub.GhostNetBackbone(model="resnet50")
    with pytest.raises(ValueError, match=r"`image_shape` must be.*Received: image_shape=\(64, 3\)"):
        hub.GhostNetBackbone(image_shape=(64, 3))
    with pytest.raises(ValueError, match="`weights` must be None or 'imagenet'.*weights='x'"):
        hub.backbone_from_registry("ghostnet_100", weights="x")
    with pytest.raises(
        ValueError, match="No ImageNet weights are published for 'g_ghost_resnet34'"
    ):
        hub.backbone_from_registry("g_ghost_resnet34", weights="imagenet")


def test_keras_files_load_in_safe_mode(tmp_path):
    """A backbone and a classifier saved as `.keras` load with `safe_mode=True` into the same
    classes, with the same outputs and pyramid."""
    backbone = hub.RegNetXBackbone(config=TINY_REGNET, ghost=True)
    assert backbone.input_shape == (None, None, None, 3)  # the default: any image size
    classifier = hub.RegNetXImageClassifier(backbone, num_classes=7)
    images = np.random.default_rng(1).normal(size=(2, SIZE, SIZE, 3)).astype("float32")
    for model in (backbone, classifier):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(loaded(images), model(images))
    loaded_backbone = loaded.backbone
    as_json = [json.dumps(b.get_config(), sort_keys=True) for b in (loaded_backbone, backbone)]
    assert as_json[0] == as_json[1]
    assert sorted(loaded_backbone.pyramid_outputs) == ["P1", "P2", "P3", "P4", "P5"]
    assert loaded(images).shape == (2, 7)


@pytest.fixture(scope="module")
def ghostnet_050(serve):
    """C-GhostNet-0.5 with its (served) PaddleClas weights: the package's model and the
    keras-hub classifier."""
    serve("ghostnet_050")
    reference = ghostnet_keras.create_model(
        "ghostnet_050", weights="imagenet", include_preprocessing=False, classifier_activation=None
    )
    classifier = hub.classifier_from_registry(
        "ghostnet_050", weights="imagenet", image_shape=(224, 224, 3)
    )
    return reference, classifier


def test_classifier_logits_are_create_models(ghostnet_050, imagenette_dir):
    """The classifier's logits on normalised real images are exactly those of
    `create_model("ghostnet_050", weights="imagenet")`; through its preprocessor (the
    weights entry's centre crop and mean/std) they match the package's model on the
    centre-cropped 0-255 image."""
    reference, classifier = ghostnet_050
    assert type(classifier) is hub.GhostNetImageClassifier
    assert classifier.backbone.arguments == {"variant": "paddleclas"}
    images = normalised(real_images(imagenette_dir, 224), "ghostnet_050")
    np.testing.assert_array_equal(classifier(images), reference(images))
    # 256 x 256 images: the evaluation crop is their central 224 x 224.
    raw = real_images(imagenette_dir, 256)
    with_preprocessing = ghostnet_keras.create_model(
        "ghostnet_050", weights="imagenet", classifier_activation=None
    )
    expected = with_preprocessing(raw[:, 16:240, 16:240])
    found = classifier(classifier.preprocessor(raw))
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-4)
    assert np.array_equal(np.argmax(found, -1), np.argmax(expected, -1))


def test_presets_load_with_keras_hub(ghostnet_050, imagenette_dir, tmp_path):
    """`write_presets` writes the folder; keras-hub's own `from_preset` (base classes) loads
    the backbone and the classifier, whose logits are create_model's."""
    reference, _ = ghostnet_050
    lines = []
    written = hub_presets.write_presets(tmp_path, ["ghostnet_050"], log=lines.append)
    folder = written["ghostnet_050"]
    assert len(lines) == 1 and lines[0].startswith("[1/1] ghostnet_050: GhostNetImageClassifier")
    images = normalised(real_images(imagenette_dir, 224), "ghostnet_050")
    backbone = keras_hub.models.Backbone.from_preset(folder)
    assert type(backbone) is hub.GhostNetBackbone
    features = keras.Model(reference.inputs, reference.get_layer(backbone.feature_layer).output)
    np.testing.assert_array_equal(backbone(images), features(images))
    classifier = keras_hub.models.ImageClassifier.from_preset(folder)
    assert type(classifier) is hub.GhostNetImageClassifier
    np.testing.assert_array_equal(classifier(images), reference(images))
    converter = classifier.preprocessor.image_converter
    assert type(converter) is hub.GhostNetImageConverter
    entry = pretrained.get_entry("ghostnet_050")
    assert (converter.mean, converter.std) == (entry.mean, entry.std)
    assert converter.image_size == (entry.input_size, entry.input_size)
    assert converter.crop_fraction == entry.crop_fraction


@pytest.mark.slow
def test_g_ghost_regnetx_backbone_with_weights(serve, imagenette_dir):
    """G-Ghost RegNetX-3.2GF (paper Table 19's detection backbone): the backbone and the
    classifier with the (served) official weights give create_model's features and logits."""
    serve("g_ghost_regnetx_032")
    name = "g_ghost_regnetx_032"
    classifier = hub.classifier_from_registry(name, weights="imagenet", image_shape=(224, 224, 3))
    assert type(classifier.backbone) is hub.RegNetXBackbone
    reference = ghostnet_keras.create_model(
        name, weights="imagenet", include_preprocessing=False, classifier_activation=None
    )
    images = normalised(real_images(imagenette_dir, 224), name)
    np.testing.assert_array_equal(classifier(images), reference(images))


def test_presets_command_bad_input_is_one_line(tmp_path):
    for args, message in (
        (["--models=ghostnet_999"], "error: `models` must be names with published weights"),
        (["--models=ghostnet_100", "--output", __file__], "error: `--output` is a file"),
    ):
        if "--output" not in args:
            args = [*args, f"--output={tmp_path}"]
        result = subprocess.run(
            [sys.executable, "-m", "ghostnet_keras.hub_presets", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(message), result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""
