"""Fine-tuning in the trainer (`--weights`, `--head_epochs`, `--finetune_learning_rate`) and the
class names kept with the model (`ghostnet_keras.labels`), on real images, offline."""

import pickle
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from test_pretrained import serve  # noqa: F401  (the published-weights origin, file://)

import ghostnet_keras
from ghostnet_keras import converters, labels
from ghostnet_keras.converters.core import expected_tensors
from training import loop, recipes

from conftest import MECHANICS_MODEL, ROOT, load_image_folder, make_subset

QUIET = dict(eval_every=0, log_every=1000, seed=0)


def class_folder(source, names, target, per_class):
    """An image folder of the classes `names` of `source` (train/ and test/), `per_class`
    `(train, test)` images of each."""
    whole = target / "source"
    for split in ("train", "test"):
        (whole / split).mkdir(parents=True)
        for name in names:
            (whole / split / name).symlink_to(source / split / name)
    make_subset(whole, target / "data", per_class[0], ["train"])
    return make_subset(whole, target / "data", per_class[1], ["test"])


def test_labels_are_kept_in_the_keras_file_and_load_in_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="classifier")])
    path = tmp_path / "model.keras"
    model.save(path)
    assert labels.load_labels(path) is None
    labels.save_labels(path, ["cat", "dog", "tree frog"])
    assert labels.load_labels(path) == ["cat", "dog", "tree frog"]
    with pytest.raises(ValueError, match="already holds labels.txt"):
        labels.save_labels(path, ["a", "b", "c"])
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    loaded.save(tmp_path / "again.keras")  # re-saving: an ordinary .keras file
    assert keras.saving.load_model(tmp_path / "again.keras").count_params() == 15
    labels.write_labels_file(tmp_path / "labels.txt", ["a", "b"])
    assert (tmp_path / "labels.txt").read_text() == "a\nb\n"
    assert labels.load_labels(tmp_path / "labels.txt") == ["a", "b"]
    assert labels.load_labels(tmp_path / "again.keras") == ["a", "b"]  # the one beside it
    with pytest.raises(ValueError, match="Received: label='two\\\\nlines'"):
        labels.labels_text(["two\nlines"])


@pytest.mark.slow
def test_transfer_from_pretrained_weights_beats_training_from_scratch(cifar10_dir, tmp_path):
    """C-GhostNet-0.5 at 32x32 pretrained on five CIFAR-10 classes (200 images each, 3
    epochs), then trained on 50 images per class of the other five, fine-tuned from that
    model.keras (2 head epochs, 4 of the whole network) or from scratch with the same 60 steps;
    test top-1 on 100 held-out images per class. The fine-tuned model then ships: its default
    int8 export loads in MediaPipe Tasks with the folder's class names. Measured on 2 loaded
    AMD EPYC cores: see docs/training.md ("Fine-tuning")."""
    names = sorted(p.name for p in (cifar10_dir / "train").iterdir())
    source = class_folder(cifar10_dir, names[:5], tmp_path / "source", (200, 100))
    target = class_folder(cifar10_dir, names[5:], tmp_path / "target", (50, 100))
    small = dict(model="ghostnet_050", image_size=32, dropout_rate=0.0, **QUIET)
    pretrain = recipes.make_config(
        dataset=f"folder:{source}",
        model_dir=str(tmp_path / "pretrain"),
        batch_size=64,
        epochs=3,
        learning_rate=0.2,
        warmup_epochs=0.5,
        **small,
    )
    loop.train(pretrain, printer=lambda line: None)
    pretrained_file = tmp_path / "pretrain" / "model.keras"
    assert labels.load_labels(pretrained_file) == names[:5]
    same = dict(dataset=f"folder:{target}", batch_size=25, epochs=6, optimizer="adamw", **small)
    tuned = loop.train(
        recipes.make_config(
            model_dir=str(tmp_path / "tuned"),
            weights=str(pretrained_file),
            head_epochs=2,
            learning_rate=3e-3,
            finetune_learning_rate=1e-3,
            warmup_epochs=0,
            **same,
        ),
        printer=lambda line: None,
    )
    scratch = loop.train(
        recipes.make_config(
            model_dir=str(tmp_path / "scratch"), learning_rate=3e-3, warmup_epochs=0, **same
        ),
        printer=lambda line: None,
    )
    print(f"transfer: fine-tuned {tuned['accuracy']:.3f}, from scratch {scratch['accuracy']:.3f}")
    assert tuned["steps"] == scratch["steps"] == 60
    assert tuned["accuracy"] >= scratch["accuracy"] + 0.10
    assert (tmp_path / "tuned" / "labels.txt").read_text().split() == names[5:]
    assert labels.load_labels(tmp_path / "tuned" / "model.keras") == names[5:]
    with zipfile.ZipFile(tmp_path / "tuned" / "model.keras") as archive:
        assert archive.read("labels.txt").decode().splitlines() == names[5:]

    # The fine-tuned model, shipped as the converter's default int8 file: MediaPipe Tasks
    # names the folder's classes from its metadata, and its top-1 on the 500 held-out images
    # is the project's own evaluation's within 1%.
    from tflite import classify, convert, evaluate, metadata

    shipped = tmp_path / "tuned_int8.tflite"
    flags = [f"--model={tmp_path / 'tuned' / 'model.keras'}", "--quantize=int8"]
    flags += [f"--calibration_data=folder:{target}", "--num_calibration=100", "--check_images=50"]
    assert convert.main([*flags, f"--output={shipped}"]) == 0
    flatbuffer = shipped.read_bytes()
    assert metadata.read_metadata(flatbuffer)["labels"] == names[5:]
    images, truth = load_image_folder(target / "test", 100)
    own = evaluate.evaluate(evaluate.TFLiteClassifier(flatbuffer), [(images, truth)])
    best = [top[0] for top in classify.classify(flatbuffer, images.astype("uint8"), top=1)]
    assert all(name == names[5:][index] for index, name, _ in best)
    app_top1 = np.mean([index == label for (index, _, _), label in zip(best, truth, strict=True)])
    print(f"fine-tuned int8: MediaPipe top-1 {app_top1:.3f}, tflite.evaluate {own['top1']:.3f}")
    assert abs(app_top1 - own["top1"]) <= 0.01


def paddleclas_checkpoint(seed=0):
    """A PaddleClas `.pdparams` of GhostNet 0.5 as published (names, shapes, plain pickle),
    with random values: what `weights="imagenet"` downloads for ghostnet_050."""
    model = ghostnet_keras.GhostNet050(variant="paddleclas", input_shape=(32, 32, 3))
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in expected_tensors(model, converters.get("paddleclas_ghostnet")).items():
        low_high = (0.5, 1.5) if name.endswith("_variance") else (-0.1, 0.1)
        state[name] = rng.uniform(*low_high, shape).astype("float32")
    return pickle.dumps(state, protocol=2)


def backbone_differences(model, reference):
    """The layers of `reference` whose weights `model` holds with other values."""
    return [
        layer.name
        for layer in reference.layers
        if layer.weights
        and not all(
            np.array_equal(a, b)
            for a, b in zip(
                model.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True
            )
        )
    ]


@pytest.mark.slow
def test_imagenet_weights_through_the_published_origin(serve, imagenette_dir, tmp_path):  # noqa: F811
    """`--weights=imagenet` downloads the published checkpoint (here from a file:// origin),
    converts it (PaddleClas's GhostNet 0.5: the weights choose the variant) and trains a new
    head for the folder's 10 classes on the frozen backbone."""
    serve("ghostnet_050", paddleclas_checkpoint())
    data = make_subset(imagenette_dir, tmp_path / "data", 4)
    config = recipes.make_config(
        dataset=f"folder:{data}",
        model_dir=str(tmp_path / "run"),
        model="ghostnet_050",
        weights="imagenet",
        image_size=32,
        batch_size=8,
        epochs=1,
        head_epochs=1,
        steps_per_epoch=2,
        optimizer="adamw",
        learning_rate=1e-2,
        **QUIET,
    )
    metrics = loop.train(config, printer=lambda line: None)
    assert metrics["steps"] == 2
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.output_shape == (None, 10)
    reference = ghostnet_keras.GhostNet050(
        weights="imagenet", include_top=False, input_shape=(32, 32, 3)
    )
    assert backbone_differences(model, reference) == []  # frozen: weights and BN statistics
    wnids = sorted(p.name for p in (data / "train").iterdir())
    assert labels.load_labels(tmp_path / "run" / "model.keras") == wnids


@pytest.mark.slow
def test_resume_across_the_phase_boundary(cifar10_dir, tmp_path):
    """A run of one head epoch resumed with more epochs goes on into the second phase: the
    backbone trains then, its BatchNorm layers stay frozen."""
    data = make_subset(cifar10_dir, tmp_path / "data", 8)
    start = tmp_path / "start.weights.h5"
    initial = ghostnet_keras.create_model(MECHANICS_MODEL, classes=10, input_shape=(32, 32, 3))
    initial.save_weights(start)
    backbone = ghostnet_keras.create_model(
        MECHANICS_MODEL, include_top=False, weights=str(start), input_shape=(32, 32, 3)
    )
    common = dict(
        dataset=f"folder:{data}",
        model_dir=str(tmp_path / "run"),
        model=MECHANICS_MODEL,
        weights=str(start),
        head_epochs=1,
        image_size=32,
        batch_size=16,
        steps_per_epoch=2,
        optimizer="adamw",
        learning_rate=1e-2,
        warmup_epochs=0,
        **QUIET,
    )
    first = loop.train(recipes.make_config(epochs=1, **common), printer=lambda line: None)
    assert first["steps"] == 2
    head_only = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert backbone_differences(head_only, backbone) == []
    assert not np.array_equal(
        head_only.get_layer("classifier").kernel, initial.get_layer("classifier").kernel
    )
    second = loop.train(recipes.make_config(epochs=2, **common), printer=lambda line: None)
    assert (second["resumed_from_step"], second["steps"]) == (2, 4)
    whole = keras.saving.load_model(tmp_path / "run" / "model.keras")
    changed = backbone_differences(whole, backbone)
    norms = {layer.name for layer in backbone.layers if "BatchNorm" in type(layer).__name__}
    assert norms and changed and not norms & set(changed)


def test_weights_that_cannot_be_used_are_one_line(cifar10_dir, tmp_path):
    """Each is refused before the first step: through the command line (one line, exit 2)
    for a file of another model, and by the library the command line calls for the rest
    (the same ValueError, without a process each)."""
    from test_train_faults import assert_one_error_line

    data = make_subset(cifar10_dir, tmp_path / "data", 2)
    other = tmp_path / "ghostnet_050.weights.h5"
    ghostnet_keras.GhostNet050(classes=10, input_shape=(32, 32, 3)).save_weights(other)
    common = dict(dataset=f"folder:{data}", model=MECHANICS_MODEL, image_size=32, batch_size=4)
    common.update(epochs=1, model_dir=str(tmp_path / "run"))
    flags = [f"--{name}={value}" for name, value in common.items()]
    result = subprocess.run(
        [sys.executable, "-m", "training.train", *flags, f"--weights={other}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert_one_error_line(
        result.returncode, result.stderr, f"does not fit model '{MECHANICS_MODEL}'", str(other)
    )
    for settings, message in (
        (dict(weights=str(tmp_path / "missing.keras")), "The `weights` file does not exist."),
        (dict(weights="imagenet"), "Received: weights='imagenet'"),
        (dict(head_epochs=1), "0 without --weights"),
    ):
        with pytest.raises(ValueError, match=message):
            loop.run(recipes.make_config(**common, **settings), printer=lambda line: None)
