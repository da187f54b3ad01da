r"""Trains a RetinaNet detector with a GhostNet-family backbone and reports its COCO mAP.

    python -m training.detect --data=DIR --backbone=ghostnet_050 --image_size=128 \
        --epochs=12 --model_dir=/tmp/detector

``DIR`` holds ``train/`` and ``val/`` (images and a COCO ``annotations.json`` each:
``training/detection_data.py``; ``python -m training.detection_data`` makes one from real
images). The detector (``ghostnet_keras.detection.retinanet``) is trained with Keras ``fit``
on ``train`` and evaluated on ``val`` with pycocotools' ``COCOeval``: mAP (IoU 0.50:0.95),
mAP@0.5 and mAP@0.75, printed and written to ``MODEL_DIR/metrics.json``; the detector is
saved as ``MODEL_DIR/detector.keras``.

Nothing is lost when a run stops: the whole training state is checkpointed at the end of
every epoch and at Ctrl-C (``MODEL_DIR/checkpoints``, the trainer's integrity-checked
checkpoints), and the same command resumes from it (more ``--epochs`` train on). One run per
model directory at a time.
"""

import argparse
import contextlib
import dataclasses
import io
import json
import os
import pathlib
import sys
import time

import numpy as np

from ghostnet_keras import cli, extras
from training import run_dir

DETECTOR_FILE = "detector.keras"
METRICS_FILE = "metrics.json"
# The settings that decide the detector's weights and its step count: a checkpoint resumes only
# a run with the same ones.
RESUME_SETTINGS = ("backbone", "weights", "image_size", "head_conv_layers", "batch_size")
# The evaluation's score threshold: COCO mAP ranks every detection, so low-scored boxes are
# kept (as in the usual COCO protocols); the detector's own `predict` keeps its threshold.
EVAL_CONFIDENCE = 0.001
EVAL_MAX_DETECTIONS = 100
WARMUP_FRACTION = 0.1
CLIP_NORM = 10.0
# COCOeval.stats order: the first three of the twelve numbers it prints.
COCO_STATS = ("mAP", "mAP_50", "mAP_75")


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """The settings of a detector training (``python -m training.detect --help``)."""

    data: str
    model_dir: str
    backbone: str = "ghostnet_050"
    weights: str | None = None
    image_size: int = 128
    epochs: int = 12
    batch_size: int = 8
    learning_rate: float = 2e-3
    head_conv_layers: int = 4
    seed: int = 0
    evaluate_untrained: bool = False

    def check(self):
        for name in ("image_size", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if not self.learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be positive. Received: learning_rate={self.learning_rate!r}"
            )
        if self.weights not in (None, "imagenet"):
            raise ValueError(
                f"`weights` must be imagenet or empty. Received: weights={self.weights!r}"
            )
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise ValueError(
                "`model_dir` is an existing file, not a folder. "
                f"Received: model_dir={self.model_dir!r}"
            )


def _coco_quietly(function, *args):
    """Runs a pycocotools call with its progress prints captured."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def predict_split(detector, split, image_size, batch_size=16):
    """The detector's boxes on ``split`` as COCO results: ``[{"image_id", "category_id",
    "bbox" [x, y, w, h] in the image's own pixels, "score"}]``."""
    from training import detection_data

    results = []
    for start in range(0, len(split), batch_size):
        chunk = dataclasses.replace(
            split,
            paths=split.paths[start : start + batch_size],
            sizes=split.sizes[start : start + batch_size],
        )
        images = detection_data.load_images(chunk, image_size)
        if len(images) < batch_size:  # one batch shape: the last batch padded with blanks
            blank = np.zeros((batch_size - len(images), *images.shape[1:]), images.dtype)
            images = np.concatenate([images, blank])
        out = detector.predict(images, batch_size=batch_size, verbose=0)
        for i, (height, width) in enumerate(chunk.sizes):
            n = int(out["num_detections"][i])
            boxes = np.asarray(out["boxes"][i][:n], "float64")
            scale = np.array([height, width, height, width]) / image_size
            y0, x0, y1, x1 = (boxes * scale).T
            for j in range(n):
                results.append(
                    {
                        "image_id": split.image_ids[start + i],
                        "category_id": split.category_ids[int(out["labels"][i][j])],
                        "bbox": [
                            float(x0[j]),
                            float(y0[j]),
                            float(x1[j] - x0[j]),
                            float(y1[j] - y0[j]),
                        ],
                        "score": float(out["confidence"][i][j]),
                    }
                )
    return results


def coco_map(split, results):
    """COCO box mAP of ``results`` (:func:`predict_split`) against ``split``'s JSON, by
    pycocotools' ``COCOeval``: ``{"mAP", "mAP_50", "mAP_75"}`` (0-1; no detections: 0)."""
    coco = extras.require("pycocotools.coco", "hub", "COCO mAP")
    cocoeval = extras.require("pycocotools.cocoeval", "hub", "COCO mAP")
    truth = _coco_quietly(coco.COCO, str(split.annotations))
    if not results:
        return dict.fromkeys(COCO_STATS, 0.0)
    found = _coco_quietly(truth.loadRes, results)
    evaluation = cocoeval.COCOeval(truth, found, "bbox")
    for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
        _coco_quietly(step)
    return {
        name: max(0.0, float(v))
        for name, v in zip(COCO_STATS, evaluation.stats[: len(COCO_STATS)], strict=True)
    }


def evaluate(detector, split, image_size, batch_size=16):
    """:func:`coco_map` of ``detector`` on ``split``, its boxes scored down to
    ``EVAL_CONFIDENCE`` (the detector's own decoder is put back after)."""
    import keras_hub

    own = detector.prediction_decoder
    detector.prediction_decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format=own.bounding_box_format,
        from_logits=own.from_logits,
        iou_threshold=own.iou_threshold,
        confidence_threshold=EVAL_CONFIDENCE,
        max_detections=EVAL_MAX_DETECTIONS,
    )
    try:
        return coco_map(split, predict_split(detector, split, image_size, batch_size))
    finally:
        detector.prediction_decoder = own


def build(config, num_classes, steps):
    """The untrained detector of ``config`` (seeded), compiled for ``steps`` training steps:
    Adam, the learning rate warmed up linearly over the first ``WARMUP_FRACTION`` of the
    steps, then cosine-decayed to 0, and the gradient norm clipped at ``CLIP_NORM``;
    keras-hub's losses (focal loss for the classes, Huber for the boxes)."""
    import keras

    from ghostnet_keras import detection

    keras.utils.set_random_seed(config.seed)
    detector = detection.retinanet(
        config.backbone,
        num_classes,
        image_size=config.image_size,
        weights=config.weights,
        head_conv_layers=config.head_conv_layers,
    )
    warmup = max(1, int(WARMUP_FRACTION * steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
    )
    detector.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=CLIP_NORM))
    return detector


def _progress(printer, epochs):
    """A Keras callback printing one line per epoch: the losses and the time."""
    import keras

    started = {}

    def on_epoch_end(epoch, logs=None):
        losses = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        took = time.monotonic() - started[epoch]
        printer(f"epoch {epoch + 1}/{epochs}: {losses} ({took:.0f} s)")

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: started.__setitem__(epoch, time.monotonic()),
        on_epoch_end=on_epoch_end,
    )


def train(config, printer=print):
    """Trains ``config``'s detector (resuming from ``model_dir/checkpoints`` if a checkpoint is
    there) and evaluates it; returns the metrics dict (also written to
    ``model_dir/metrics.json``, the detector to ``model_dir/detector.keras``). Raises
    `ValueError` for bad settings or data, and when another run holds ``model_dir``."""
    from training import detection_data

    config.check()
    splits = detection_data.read_folder(config.data)
    model_dir = pathlib.Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails before training
    with run_dir.RunLock(model_dir):
        return _train(config, splits, model_dir, printer)


def _train(config, splits, model_dir, printer):
    from ghostnet_keras import files
    from training import detection_data

    train_split, val_split = splits["train"], splits["val"]
    printer(
        f"data: {len(train_split)} training images ({train_split.num_boxes} boxes), "
        f"{len(val_split)} held-out ({val_split.num_boxes} boxes), "
        f"{len(train_split.class_names)} classes"
    )
    steps_per_epoch = -(-len(train_split) // config.batch_size)
    steps = steps_per_epoch * config.epochs
    detector = build(config, len(train_split.class_names), steps)
    metrics = {"config": dataclasses.asdict(config), "classes": train_split.class_names}
    if config.evaluate_untrained:
        metrics["untrained"] = evaluate(detector, val_split, config.image_size, config.batch_size)
        printer(f"untrained: {_summary(metrics['untrained'])}")
    data = detection_data.dataset(
        train_split, config.image_size, config.batch_size, shuffle=True, seed=config.seed
    )
    start = time.monotonic()
    losses, start_step = _fit(detector, data, config, steps_per_epoch, model_dir, printer)
    metrics["train_seconds"] = round(time.monotonic() - start, 1)
    metrics["resumed_from_step"], metrics["steps"] = start_step, steps
    metrics["loss"] = losses
    metrics["val"] = evaluate(detector, val_split, config.image_size, config.batch_size)
    printer(f"held-out: {_summary(metrics['val'])}")
    with files.atomic_path(model_dir / DETECTOR_FILE) as path:
        detector.save(path)
    files.write_json(model_dir / METRICS_FILE, metrics)
    printer(f"saved {model_dir / DETECTOR_FILE} and {model_dir / METRICS_FILE}")
    return metrics


def _fit(detector, data, config, steps_per_epoch, model_dir, printer):
    """Trains from the newest checkpoint of ``model_dir`` (if any) to ``config.epochs``: the
    rest of an interrupted epoch first, then whole epochs; checkpoints at each epoch's end and
    at Ctrl-C. The weights, optimizer state and step go on where they stopped; the resumed
    epochs see the data in another order than an uninterrupted run would. Returns the losses
    of the epochs trained here and the step it started from."""
    from training import callbacks as callbacks_lib
    from training import checkpoint as checkpoint_lib
    from training import loop

    run = {name: getattr(config, name) for name in RESUME_SETTINGS}
    run["steps_per_epoch"] = steps_per_epoch
    checkpoint = checkpoint_lib.ResumableCheckpoint(
        model_dir / run_dir.CHECKPOINT_DIR, printer=printer, extra_state=lambda: run
    )
    state = checkpoint.restore(detector)
    step, total = (state or {}).get("step", 0), steps_per_epoch * config.epochs
    if state is not None:
        run_dir.check_same_run(state, run, model_dir)
        if step > total:
            raise ValueError(
                f"{model_dir} holds a run at step {step}, past the {total} steps of this one: "
                f"give at least as many --epochs. Received: epochs={config.epochs}"
            )
        printer(f"resuming from {model_dir / run_dir.CHECKPOINT_DIR} at step {step}/{total}")
    interrupt = callbacks_lib.SaveOnInterrupt(checkpoint.save)
    with interrupt:
        histories = loop.fit_from_step(
            detector,
            data,
            step,
            steps_per_epoch,
            config.epochs,
            repeats=False,  # one pass over the training split per epoch
            shuffle=False,  # the dataset shuffles itself (seeded)
            verbose=0,
            callbacks=[checkpoint, _progress(printer, config.epochs), interrupt],
        )
    losses = [float(v) for history in histories for v in history.history["loss"]]
    return losses, step


def _summary(stats):
    return ", ".join(f"{name} {100 * stats[name]:.1f}" for name in COCO_STATS)


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv):
    defaults = DetectConfig(data="", model_dir="")
    parser = argparse.ArgumentParser(
        prog="python -m training.detect",
        description="Trains a RetinaNet with a GhostNet-family backbone on a detection folder "
        "(train/ and val/, images + COCO JSON) and reports COCO mAP on val.",
    )
    parser.add_argument("--data", required=True, help="the detection folder")
    parser.add_argument("--model_dir", required=True, help="where the detector and metrics go")
    parser.add_argument(
        "--backbone",
        default=defaults.backbone,
        help="a registry name, or ghostnet_110 (C-GhostNet-1.1x, the paper's Table 10)",
    )
    parser.add_argument("--weights", default=None, choices=("imagenet",), help="backbone weights")
    parser.add_argument("--image_size", type=int, default=defaults.image_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning_rate", type=float, default=defaults.learning_rate)
    parser.add_argument(
        "--head_conv_layers",
        type=int,
        default=defaults.head_conv_layers,
        help="3x3 convolutions per prediction head (the paper's RetinaNet: 4)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--evaluate_untrained",
        action="store_true",
        help="also report the mAP of the randomly initialised detector (the baseline)",
    )
    parser.add_argument("--verbose", action="store_true", help="TensorFlow's C++ log lines")
    return parser.parse_args(argv)


def _error(err):
    print(f"detect: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
    return 2


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    verbose = cli.is_verbose(args.verbose)
    cli.quiet(verbose)
    settings = {k: v for k, v in vars(args).items() if k != "verbose"}
    try:
        config = DetectConfig(**settings)
        config.check()
        with cli.quiet_imports(verbose):
            extras.require("tensorflow", "train", "training")
            extras.require("keras_hub", "hub", "RetinaNet detectors (keras-hub)")
            extras.require("pycocotools", "hub", "COCO mAP")
            import keras  # noqa: F401
        metrics = train(config, printer=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print(
            f"detect: interrupted; the same command resumes from the checkpoint in "
            f"{args.model_dir}",
            file=sys.stderr,
            flush=True,
        )
        return 130
    except (ValueError, OSError, extras.MissingExtraError) as err:
        return _error(err)
    except Exception as err:  # TensorFlow runtime errors: one line too, no traceback
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(err, tf.errors.OpError):
            raise
        return _error(cli.runtime_error_line(err))
    print(json.dumps(metrics["val"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
