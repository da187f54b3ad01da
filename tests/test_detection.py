"""RetinaNet detectors over the package's backbones (ghostnet_keras.detection, keras-hub), the
detection folder and synthetic set (training/detection_data.py) and the trainer
(training/detect.py).

The `any_backend` tests import only Keras, keras-hub, NumPy and ghostnet_keras: they run
under TensorFlow here and under JAX in `.ci/jax` (`-k any_backend`).
"""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import ghostnet_keras

keras_hub = pytest.importorskip("keras_hub")

from ghostnet_keras import detection  # noqa: E402

# The tiny detector of the build/predict/round-trip tests: C-GhostNet-0.5x, one 3x3 conv per
# head, 64x64 images (P3-P7: 8x8 ... 1x1 cells, 9 anchors each); every score kept (untrained,
# they are near the classification head's 0.01 prior, under the default 0.05 threshold).
TINY = dict(num_classes=3, image_size=64, head_conv_layers=1, confidence_threshold=0.0)
TINY_ANCHORS = 9 * (8 * 8 + 4 * 4 + 2 * 2 + 1 + 1)


def _images(n=2, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


# ---------------------------------------------------------------------------------------------
# The paper's backbones


def test_backbone_flops_at_224_match_the_paper():
    """Table 10: C-GhostNet-1.1x, 164M backbone FLOPs (multiply-adds) at 224x224, counted
    on the keras-hub backbone the detector takes (the network without its classifier)."""
    encoder = detection.backbone("ghostnet_110", image_shape=(224, 224, 3))
    found = ghostnet_keras.profile(encoder, 224)
    assert found["macs"] == 164_355_184  # the paper: 164M
    assert round(found["macs"] / 1e6) == 164
    pyramid = encoder.pyramid_outputs
    assert [pyramid[f"P{i}"].shape[1] for i in (3, 4, 5)] == [28, 14, 7]


def test_g_ghost_regnetx_032_backbone_flops_match_the_paper():
    """Table 19: the backbones' FLOPs at 224x224, G-Ghost RegNetX-3.2GF 1.8B against
    RegNetX-3.2GF's 3.2B; the keras-hub backbones of the registry models."""
    found = {
        name: ghostnet_keras.profile(detection.backbone(name, image_shape=(224, 224, 3)), 224)
        for name in ("g_ghost_regnetx_032", "regnetx_032")
    }
    assert found["g_ghost_regnetx_032"]["macs"] == 1_800_738_240  # the paper: 1.8B
    assert found["regnetx_032"]["macs"] == 3_175_613_952  # the paper: 3.2B


# ---------------------------------------------------------------------------------------------
# Build, predict, round trip: any backend


@pytest.fixture(scope="module")
def tiny_detector():
    keras.utils.set_random_seed(0)
    return detection.retinanet("ghostnet_050", **TINY)


def test_detector_builds_and_predicts_any_backend(tiny_detector):
    """The RetinaNet over C-GhostNet: P3-P7 from the backbone's P3-P5, 9 anchors per cell,
    and `predict` decodes boxes, classes and scores (non-maximum suppression)."""
    detector = tiny_detector
    assert isinstance(detector, keras_hub.models.RetinaNetObjectDetector)
    assert isinstance(detector.backbone.image_encoder, keras_hub.models.FeaturePyramidBackbone)
    assert (detector.backbone.min_level, detector.backbone.max_level) == (3, 7)
    raw = detector(detector.preprocessor(_images()))
    assert tuple(raw["cls_logits"].shape) == (2, TINY_ANCHORS, 3)
    assert tuple(raw["bbox_regression"].shape) == (2, TINY_ANCHORS, 4)
    out = detector.predict(_images(), verbose=0)
    assert set(out) == {"boxes", "confidence", "labels", "num_detections"}
    assert out["boxes"].shape == (2, 100, 4)
    n = int(out["num_detections"][0])
    assert n > 0
    boxes = np.asarray(out["boxes"][0][:n])
    scores = np.asarray(out["confidence"][0][:n])
    assert np.all(np.diff(scores) <= 0) and np.all((scores > 0) & (scores < 0.1))
    assert np.all(np.asarray(out["labels"][0][:n]) >= 0)
    assert np.all(np.asarray(out["labels"][0][:n]) < 3)
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])


def test_detector_keras_round_trip_any_backend(tiny_detector, tmp_path):
    """Saved as `.keras` and loaded in safe mode: the same layers, the same outputs."""
    path = tmp_path / "detector.keras"
    tiny_detector.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(tiny_detector)
    x = tiny_detector.preprocessor(_images())
    before, after = tiny_detector(x), loaded(x)
    for key in ("cls_logits", "bbox_regression"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(after[key]),
            keras.ops.convert_to_numpy(before[key]),
            rtol=1e-5,
            atol=1e-5,
        )
    assert loaded.preprocessor.image_converter.image_size == (64, 64)


def test_detector_rejects_bad_arguments_any_backend():
    cases = [
        (dict(backbone_name="ghostnet_110", num_classes=0), "num_classes"),
        (dict(backbone_name="ghostnet_050", num_classes=2, image_size=16), "image_size"),
        (dict(backbone_name="ghostnet_050", num_classes=2, head_conv_layers=-1), "head_conv"),
        (dict(backbone_name="not_a_model", num_classes=2), "backbone"),
        (dict(backbone_name="ghostnet_110", num_classes=2, weights="imagenet"), "weights"),
        (dict(backbone_name="ghostnet_050", num_classes=2, bounding_box_format="yx"), "format"),
    ]
    for kwargs, word in cases:
        with pytest.raises(ValueError, match=word) as err:
            detection.retinanet(**kwargs)
        assert "Received:" in str(err.value)


# ---------------------------------------------------------------------------------------------
# The detection folder and the synthetic set


def _write_split(root, images, annotations, categories=({"id": 7, "name": "cat"},)):
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for image in images:
        Image.new("RGB", (image["width"], image["height"]), (90, 120, 30)).save(
            root / image["file_name"]
        )
    data = {"images": images, "annotations": annotations, "categories": list(categories)}
    (root / "annotations.json").write_text(json.dumps(data))


def test_detection_folder_reads_coco_json(tmp_path):
    """COCO [x, y, w, h] boxes come back as yxyx, class indices in category id order, a crowd
    box left out; scaled and padded (-1) for a 50x50 training input."""
    from training import detection_data

    images = [
        {"id": 3, "file_name": "a.jpg", "width": 100, "height": 200},
        {"id": 5, "file_name": "b.png", "width": 40, "height": 40},
    ]
    annotations = [
        {"id": 1, "image_id": 3, "category_id": 9, "bbox": [10, 20, 30, 40], "iscrowd": 0},
        {"id": 2, "image_id": 3, "category_id": 7, "bbox": [0, 0, 100, 200], "iscrowd": 0},
        {"id": 3, "image_id": 5, "category_id": 7, "bbox": [1, 1, 2, 2], "iscrowd": 1},
    ]
    categories = ({"id": 9, "name": "dog"}, {"id": 7, "name": "cat"})
    _write_split(tmp_path / "train", images, annotations, categories)
    split = detection_data.read_split(tmp_path / "train")
    assert split.class_names == ["cat", "dog"] and split.category_ids == [7, 9]
    assert split.image_ids == [3, 5] and split.sizes == [(200, 100), (40, 40)]
    np.testing.assert_array_equal(split.boxes[0], [[20, 10, 60, 40], [0, 0, 200, 100]])
    np.testing.assert_array_equal(split.labels[0], [1, 0])
    assert split.boxes[1].shape == (0, 4) and split.num_boxes == 2
    boxes, labels = detection_data.padded_targets(split, 50)
    np.testing.assert_allclose(boxes[0], [[5, 5, 15, 20], [0, 0, 50, 50]])
    np.testing.assert_array_equal(boxes[1], -np.ones((2, 4)))
    np.testing.assert_array_equal(labels, [[1, 0], [-1, -1]])
    assert detection_data.load_images(split, 50).shape == (2, 50, 50, 3)


@pytest.mark.parametrize(
    "annotation, message",
    [
        ({"bbox": [90, 0, 20, 10]}, "lie inside"),
        ({"bbox": [0, 0, 0, 10]}, "positive size"),
        ({"bbox": "0 0 1 1"}, r"\[x, y, width, height\]"),
        ({"image_id": 4}, "image id"),
        ({"category_id": 8}, "unknown category"),
    ],
)
def test_detection_folder_rejects_bad_annotations(tmp_path, annotation, message):
    from training import detection_data

    images = [{"id": 3, "file_name": "a.jpg", "width": 100, "height": 100}]
    good = {"id": 1, "image_id": 3, "category_id": 7, "bbox": [0, 0, 10, 10]}
    _write_split(tmp_path / "val", images, [{**good, **annotation}])
    with pytest.raises(ValueError, match=message) as err:
        detection_data.read_split(tmp_path / "val")
    assert "annotations.json" in str(err.value) and "Received:" in str(err.value)


def test_detection_folder_names_a_missing_image_or_file(tmp_path):
    from training import detection_data

    images = [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}]
    _write_split(tmp_path / "train", images, [])
    (tmp_path / "train" / "a.jpg").unlink()
    with pytest.raises(ValueError, match="do not exist, e.g. .*a.jpg"):
        detection_data.read_split(tmp_path / "train")
    with pytest.raises(ValueError, match="annotations.json does not exist"):
        detection_data.read_split(tmp_path / "val")


def _synthesize(directory, cifar10_dir, imagenette_dir, **options):
    from training import detection_data

    return detection_data.synthesize(
        directory,
        cifar10_dir,
        imagenette_dir,
        detection_data.SynthesisOptions(**options),
    )


def test_synthetic_set_is_real_held_out_and_reproducible(tmp_path, cifar10_dir, imagenette_dir):
    """Boxes inside the image, not overlapping, 32-64 pixels; the same seed, the same files;
    the held-out split's pixels come from other images (CIFAR-10 test on Imagenette val)."""
    from training import detection_data

    options = dict(train_images=6, val_images=4, classes=("cat", "ship"), image_size=96)
    counts = _synthesize(tmp_path / "a", cifar10_dir, imagenette_dir, **options)
    _synthesize(tmp_path / "b", cifar10_dir, imagenette_dir, **options)
    splits = detection_data.read_folder(tmp_path / "a")
    assert {s: splits[s].num_boxes for s in splits} == counts
    for split in splits.values():
        assert split.class_names == ["cat", "ship"]
        for boxes in split.boxes:
            assert 1 <= len(boxes) <= 3
            sides = boxes[:, 2:] - boxes[:, :2]
            assert np.all(sides[:, 0] == sides[:, 1]) and np.all((sides >= 32) & (sides <= 64))
            assert np.all(boxes >= 0) and np.all(boxes <= 96)
            for i in range(len(boxes)):
                for j in range(i):
                    a, b = boxes[i], boxes[j]
                    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    for split in ("train", "val"):
        for name in ("annotations.json", "images/000001.jpg"):
            assert (tmp_path / "a" / split / name).read_bytes() == (
                tmp_path / "b" / split / name
            ).read_bytes()
    train, val = (detection_data.load_images(splits[s], 96) for s in ("train", "val"))
    assert not any(np.array_equal(v, t) for v in val for t in train)


def test_synthesis_cli_rejects_bad_input(tmp_path, capsys):
    from training import detection_data

    assert detection_data.main([f"--output={tmp_path}", "--classes=cat,unicorn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes=cat,unicorn" in err[0]
    assert detection_data.main([f"--output={tmp_path}", "--scale_range=2,1"]) == 2
    assert "scale_range" in capsys.readouterr().err


def test_detect_cli_bad_input_is_one_line(tmp_path):
    """A folder without the splits: one error line, exit status 2, no traceback."""
    run = subprocess.run(
        [sys.executable, "-m", "training.detect", f"--data={tmp_path}", "--model_dir=x"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert run.stderr.startswith("detect: error: ") and "annotations.json" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "training.detect", "--data=x", "--model_dir=y", "--epochs=0"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "epochs=0" in run.stderr and "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------------
# Training on real images: mAP on the held-out split

# The training test's set and run: 320 training images (CIFAR-10 airplanes, cars and frogs,
# 32-40 pixels, on Imagenette backgrounds), 60 held-out; C-GhostNet-0.5x RetinaNet at 64x64,
# one conv per head, batch 8, 4 epochs (160 steps).
TRAIN_SET = dict(
    train_images=320,
    val_images=60,
    classes=("airplane", "automobile", "frog"),
    image_size=64,
    objects_per_image=(1, 2),
    scale_range=(1.0, 1.25),
)
TRAIN_RUN = dict(
    backbone="ghostnet_050", image_size=64, epochs=4, batch_size=8, head_conv_layers=1, seed=0
)


@pytest.mark.slow
def test_detector_trains_on_real_images(tmp_path, cifar10_dir, imagenette_dir):
    """`training.detect.train` on the synthetic set: COCO mAP@0.5 (pycocotools) on the
    held-out split far above the same detector's before training; the metrics and the
    `.keras` detector written. The run stops after 2 of its 4 epochs (a first command with
    `epochs=2`) and the second command resumes from the checkpoint, not from scratch."""
    from training import detect, detection_data

    _synthesize(tmp_path / "data", cifar10_dir, imagenette_dir, **TRAIN_SET)
    config = detect.DetectConfig(
        data=str(tmp_path / "data"), model_dir=str(tmp_path / "run"), **TRAIN_RUN
    )
    half = dataclasses.replace(config, epochs=2, evaluate_untrained=True)
    first = detect.train(half, printer=lambda line: None)
    lines = []
    metrics = detect.train(config, printer=lines.append)
    untrained, trained = first["untrained"], metrics["val"]
    found = f"untrained {untrained}, trained {trained}, {lines}"
    print(found)  # shown with -rP
    assert trained["mAP_50"] > 0.05 and trained["mAP_50"] > 5 * untrained["mAP_50"], found
    assert trained["mAP"] > 2 * untrained["mAP"], found
    steps = first["steps"]
    assert (metrics["resumed_from_step"], metrics["steps"]) == (steps, 2 * steps), found
    assert len(metrics["loss"]) == 2 and metrics["loss"][-1] < first["loss"][0], found
    assert any(line.startswith(f"resuming from {tmp_path / 'run'}") for line in lines), found
    epochs = [line[:10] for line in lines if line.startswith("epoch ")]
    assert epochs == ["epoch 3/4:", "epoch 4/4:"], found
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val"] == trained and saved["classes"] == list(TRAIN_SET["classes"])
    # The saved detector is the trained one: the same held-out mAP.
    loaded = keras.saving.load_model(tmp_path / "run" / "detector.keras")
    split = detection_data.read_split(tmp_path / "data" / "val")
    again = detect.evaluate(loaded, split, TRAIN_RUN["image_size"])
    assert again == pytest.approx(trained, abs=1e-6)
    other = dataclasses.replace(config, image_size=96)
    with pytest.raises(ValueError, match=r"Received: image_size=96"):
        detect.train(other, printer=lambda line: None)


def test_paper_detectors_build():
    """Tables 10 and 19's detectors with the paper's heads (4 convs): C-GhostNet-1.1x and
    G-Ghost RegNetX-3.2GF RetinaNets give one score per class and one box per anchor."""
    anchors = 9 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)  # 128x128: P3 16x16 ... P7 1x1
    for name in ("ghostnet_110", "g_ghost_regnetx_032"):
        detector = detection.retinanet(name, num_classes=5, image_size=128)
        assert detector.pre_logits_num_conv_layers == 4
        raw = detector(detector.preprocessor(_images(1, 128)))
        assert tuple(raw["cls_logits"].shape) == (1, anchors, 5), name
        assert tuple(raw["bbox_regression"].shape) == (1, anchors, 4), name
