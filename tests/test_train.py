"""Training: recipes and flags, real training on real CIFAR-10 images, kill-and-resume,
two-worker training, and the command line's error messages."""

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest

from training import recipes

from conftest import EXHAUSTIVE, MECHANICS_MODEL, make_subset

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_train(*args, env=None, timeout=600):
    """Runs `python -m training.train ARGS` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "training.train", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def cifar_small(cifar10_dir, tmp_path_factory):
    """10 training and 4 test images per class (100 + 40), for runs of a few steps."""
    root = tmp_path_factory.mktemp("cifar_small")
    make_subset(cifar10_dir, root, 10, splits=["train"])
    make_subset(cifar10_dir, root, 4, splits=["test"])
    return root


# ---------------------------------------------------------------------------------------------
# Recipes, flags, learning rate (fast, no training)


def test_learning_rate_scales_linearly_from_the_paper():
    # Paper section 5.2.4: 0.4 at a batch of 1,024.
    assert recipes.scaled_learning_rate(1024) == pytest.approx(0.4)
    assert recipes.scaled_learning_rate(256) == pytest.approx(0.1)
    config = recipes.make_config(dataset="cifar10", model_dir="/tmp/x", batch_size=512)
    assert config.learning_rate == pytest.approx(0.2)
    # The CIFAR-10 recipe scales from He et al.'s 0.1 at 128.
    config = recipes.make_config("cifar10", model_dir="/tmp/x", batch_size=256)
    assert config.learning_rate == pytest.approx(0.2)


def test_recipe_sets_defaults_and_explicit_settings_win():
    imagenet = recipes.make_config("ghostnet_imagenet", model_dir="/tmp/x")
    assert (imagenet.dataset, imagenet.model, imagenet.image_size) == (
        "imagenet2012",
        "ghostnet_100",
        224,
    )
    assert (imagenet.batch_size, imagenet.learning_rate, imagenet.epochs) == (1024, 0.4, 400)
    assert (imagenet.lr_schedule, imagenet.warmup_epochs) == ("cosine", 5.0)
    assert (imagenet.weight_decay, imagenet.label_smoothing, imagenet.dropout_rate) == (
        4e-5,
        0.1,
        0.2,
    )
    assert imagenet.ema_decay == 0.9999 and imagenet.optimizer == "sgd" and imagenet.nesterov
    override = recipes.make_config(
        "ghostnet_imagenet", model_dir="/tmp/x", batch_size=256, epochs=10, learning_rate=0.05
    )
    assert (override.batch_size, override.epochs, override.learning_rate) == (256, 10, 0.05)
    assert override.weight_decay == 4e-5  # untouched settings keep the recipe's value
    cifar = recipes.make_config("cifar10", model_dir="/tmp/x")
    assert (cifar.model, cifar.epochs, cifar.lr_decay_epochs, cifar.weight_decay) == (
        "ghost_resnet56",
        164,
        (82, 123),
        1e-4,
    )


def test_flag_file_and_command_line_precedence(tmp_path):
    from training import train

    flagfile = tmp_path / "run.flags"
    flagfile.write_text("--recipe=cifar10\n--batch_size=64\n--epochs=7\n")
    train.FLAGS.unparse_flags()
    try:
        train.FLAGS(["train", f"--flagfile={flagfile}", "--epochs=3", "--model_dir=/tmp/x"])
        config = train.config_from_flags(train.FLAGS)
    finally:
        train.FLAGS.unparse_flags()
    assert config.recipe == "cifar10"
    assert config.batch_size == 64  # flag file beats the recipe
    assert config.epochs == 3  # the command line after the flag file beats it
    assert config.learning_rate == pytest.approx(0.1 * 64 / 128)  # scaled, recipe's base
    assert config.model == "ghost_resnet56"


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="Received: label_smoothing=1.5"):
        recipes.make_config(dataset="cifar10", model_dir="/x", label_smoothing=1.5)
    with pytest.raises(ValueError, match="Received: recipe='imagenet'"):
        recipes.make_config("imagenet", dataset="cifar10", model_dir="/x")
    with pytest.raises(ValueError, match="Received: warmup_epochs=5"):
        recipes.make_config(dataset="cifar10", model_dir="/x", epochs=3, warmup_epochs=5)
    with pytest.raises(ValueError, match="model_kwargs"):
        recipes.make_config(dataset="cifar10", model_dir="/x", model_kwargs="width")
    assert recipes.parse_model_kwargs("ratio=2,dw_size=3,name=v") == {
        "ratio": 2,
        "dw_size": 3,
        "name": "v",
    }


def test_schedule_warmup_cosine_and_step():
    import keras

    from training import optimization

    config = recipes.make_config(
        dataset="cifar10", model_dir="/x", epochs=10, warmup_epochs=2, learning_rate=0.4
    )
    schedule = optimization.learning_rate_schedule(config, steps_per_epoch=100)
    value = lambda step: float(keras.ops.convert_to_numpy(schedule(step)))  # noqa: E731
    assert value(0) == pytest.approx(0.0)
    assert value(100) == pytest.approx(0.2)  # linear warm-up
    assert value(200) == pytest.approx(0.4)  # peak at the end of the warm-up
    assert value(600) == pytest.approx(0.2, abs=1e-6)  # cosine half-way through the decay
    assert value(1000) == pytest.approx(0.0, abs=1e-7)
    step = recipes.make_config("cifar10", model_dir="/x")
    schedule = optimization.learning_rate_schedule(step, steps_per_epoch=391)
    assert value(82 * 391 - 1) == pytest.approx(0.1)
    assert value(82 * 391 + 1) == pytest.approx(0.01)
    assert value(123 * 391 + 1) == pytest.approx(0.001)


def test_weight_decay_applies_to_kernels_only():
    import keras

    from training import models, optimization

    config = recipes.make_config(
        dataset="cifar10", model_dir="/x", model="ghostnet_050", image_size=32, weight_decay=4e-5
    )
    model = models.build_model(config, num_classes=10)
    optimization.build_optimizer(config, model, steps_per_epoch=10)
    decayed = [v for v in model.trainable_variables if v.regularizer is not None]
    kept = [v for v in model.trainable_variables if v.regularizer is None]
    assert decayed and all(len(v.shape) >= 2 for v in decayed)  # conv, depthwise, dense kernels
    assert kept and all(len(v.shape) == 1 for v in kept)  # biases, batch-norm gamma/beta
    assert any("gamma" in v.path for v in kept) and any("bias" in v.path for v in kept)
    # Coupled decay: the penalty's gradient is weight_decay * w.
    expected = sum(
        4e-5 / 2 * float(np.sum(np.square(keras.ops.convert_to_numpy(v)))) for v in decayed
    )
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == pytest.approx(
        expected, rel=1e-4
    )


# ---------------------------------------------------------------------------------------------
# Real training


def test_small_ghostnet_learns_cifar10(cifar_training_run):
    """The session's real run (conftest's `CIFAR_RUN`: C-GhostNet-0.5 at 32x32, 6 epochs of
    SGD with the default optimizer, cosine schedule and label smoothing, on 2,000 real
    CIFAR-10 images), evaluated on 1,000 test images.

    Chance is 10%; with 1,000 test images its standard deviation is under 1%. The threshold,
    20%, is more than 10 standard deviations above chance, and runs of this setup reach about
    30% (34.6% after 8 epochs): a model that did not learn, or labels that do not match the
    images, cannot pass.

    The training folder also holds a file that is not an image: data.py's rule is to skip it
    with a warning naming it, and training goes on."""
    metrics, run = cifar_training_run["metrics"], cifar_training_run["dir"]
    assert metrics["steps"] == 6 * (2001 // 64)
    assert metrics["eval_examples"] == 1000
    assert metrics["accuracy"] > 0.20, metrics
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(metrics["accuracy"])
    assert (run / "model.keras").exists()
    assert any("Wrote to" in line for line in cifar_training_run["lines"])
    assert "broken.jpg" in cifar_training_run["stderr"]


@pytest.mark.slow
def test_killed_run_resumes_and_ends_with_the_same_step_count(cifar_small, tmp_path):
    """SIGKILL a CLI run mid-epoch once a step checkpoint exists; the same command resumes
    from it (not from scratch) and ends at the step count of an uninterrupted run."""
    model_dir = tmp_path / "run"
    steps_per_epoch, epochs = 100 // 10, 2  # 10 steps per epoch, 20 in all
    args = [
        f"--dataset=folder:{cifar_small}",
        f"--model={MECHANICS_MODEL}",
        "--image_size=32",
        "--batch_size=10",
        f"--epochs={epochs}",
        "--warmup_epochs=0.5",
        "--save_every=2",
        "--log_every=5",
        "--eval_every=0",
        "--seed=1",
        f"--model_dir={model_dir}",
    ]
    command = [sys.executable, "-m", "training.train", *args]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    state_file = model_dir / "checkpoints" / "state.json"
    killed_at = None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if state_file.exists():
                step = json.loads(state_file.read_text())["step"]
                if step > steps_per_epoch and step % steps_per_epoch:  # inside epoch 2
                    process.send_signal(signal.SIGKILL)
                    killed_at = step
                    break
            time.sleep(0.05)
    finally:
        if process.poll() is None and killed_at is None:
            process.kill()
        process.wait(timeout=60)
    assert killed_at is not None, "the run ended or timed out before a mid-epoch checkpoint"
    assert process.returncode == -signal.SIGKILL
    assert not (model_dir / "metrics.json").exists()

    rerun = run_train(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resumed = json.loads(state_file.read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert "Resuming from" in rerun.stdout
    assert metrics["resumed_from_step"] >= killed_at  # at most save_every steps lost
    assert metrics["resumed_from_step"] % steps_per_epoch  # mid-epoch, not an epoch start
    assert metrics["steps"] == steps_per_epoch * epochs == resumed["step"]
    assert metrics["steps_this_run"] == metrics["steps"] - metrics["resumed_from_step"]
    assert not list((model_dir / "checkpoints").glob(".tmp-*"))  # no torn writes left

    import keras

    from training import checkpoint, models, optimization

    model = keras.saving.load_model(model_dir / "model.keras")
    assert models.weights_fingerprint(model) == metrics["weights_sha256"]
    # The last checkpoint restores the full training state, step counter included.
    config = recipes.make_config(
        dataset=f"folder:{cifar_small}",
        model_dir=str(model_dir),
        model=MECHANICS_MODEL,
        image_size=32,
        batch_size=10,
        epochs=epochs,
        warmup_epochs=0.5,
    )
    fresh = models.build_model(config, num_classes=10)
    optimization.compile_model(fresh, config, steps_per_epoch)
    state = checkpoint.ResumableCheckpoint(model_dir / "checkpoints").restore(fresh)
    assert state["step"] == checkpoint.global_step(fresh) == steps_per_epoch * epochs
    assert models.weights_fingerprint(fresh) == metrics["weights_sha256"]  # no EMA: same weights


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_train_in_sync_and_only_the_chief_writes(cifar_small, tmp_path):
    """Two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, one replica each) train
    a few steps on real images; both end with the same weights (batch-norm statistics
    included), and only worker 0, the chief, writes into the model directory."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    model_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "training.train",
        f"--dataset=folder:{cifar_small}",
        f"--model={MECHANICS_MODEL}",
        "--image_size=32",
        "--batch_size=20",
        "--epochs=2",
        "--steps_per_epoch=3",
        "--warmup_epochs=0.5",
        "--ema_decay=0.9",
        "--log_every=3",
        "--eval_every=0",
        "--strategy=multi_worker_mirrored",
        "--seed=2",
        f"--model_dir={model_dir}",
    ]
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                args,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            )
        )
    outputs = [w.communicate(timeout=900) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    fingerprints = [
        next(line.split(": ")[-1] for line in out.splitlines() if "Weights sha256" in line)
        for out, _ in outputs
    ]
    assert fingerprints[0] == fingerprints[1]  # identical weights on both workers
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["steps"] == 6
    assert metrics["task"] == "worker:0" and metrics["weights_sha256"] == fingerprints[0]
    assert "Wrote to" in outputs[0][0] and "Wrote to" not in outputs[1][0]
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "checkpoints",
        "config.json",
        "labels.txt",
        "logs",
        "metrics.json",
        "model.keras",
    ]
    assert json.loads((model_dir / "checkpoints" / "state.json").read_text())["step"] == 6

    import keras

    from training import models

    saved = keras.saving.load_model(model_dir / "model.keras")
    assert models.weights_fingerprint(saved) == fingerprints[0]


# ---------------------------------------------------------------------------------------------
# Command-line errors: one line on stderr, exit code 2, no traceback


def _error_cases(cifar_small, tmp_path):
    empty = tmp_path / "empty"
    (empty / "train" / "cat").mkdir(parents=True)
    (empty / "test" / "cat").mkdir(parents=True)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    base = [f"--model_dir={tmp_path / 'run'}", "--epochs=1", "--warmup_epochs=0"]
    small = [f"--dataset=folder:{cifar_small}", f"--model={MECHANICS_MODEL}", "--image_size=32"]
    return {
        "unknown model": (
            [*base, *small[:1], "--model=ghostnet_10"],
            "Unknown model. Did you mean:",
        ),
        "unknown dataset": ([*base, "--dataset=no_such_dataset_xyz"], "Received: dataset="),
        "missing folder": (
            [*base, f"--dataset=folder:{tmp_path / 'nowhere'}"],
            "does not exist",
        ),
        "empty folder": ([*base, f"--dataset=folder:{empty}"], "holds no images"),
        "batch not divisible by replicas": (
            [*base, *small, "--strategy=mirrored", "--cpu_replicas=2", "--batch_size=25"],
            "divisible by the 2 replicas",
        ),
        "unwritable model_dir": (
            [*small, "--epochs=1", "--warmup_epochs=0", f"--model_dir={blocker / 'run'}"],
            "Cannot write to the model directory",
        ),
        "nothing to evaluate": ([*base, *small, "--eval_only"], "needs a checkpoint"),
        "bad flag value": ([*base, *small, "--batch_size=abc"], "batch_size"),
        "bad enum": ([*base, *small, "--optimizer=adam"], "optimizer"),
        "out of range": ([*base, *small, "--label_smoothing=1.5"], "label_smoothing=1.5"),
        "unknown recipe": ([*base, "--recipe=imagenet"], "recipe"),
        "missing dataset": ([f"--model_dir={tmp_path / 'run'}"], "dataset"),
    }


def test_help_exits_0_and_lists_the_settings():
    """`--help` is a request, not an error: exit 0 (absl's was 1; issue 23, item 21), with the
    usage and every setting of training/config.py on stdout."""
    result = run_train("--help", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "python -m training.train --dataset=... --model_dir=..." in result.stdout
    for name in ("--dataset", "--model_dir", "--seed", "--recipe", "--batch_size"):
        assert f"{name}:" in result.stdout, name
    assert "Traceback" not in result.stderr


def test_command_line_errors_are_one_line(cifar_small, tmp_path):
    cases = _error_cases(cifar_small, tmp_path)
    # One model directory each: a run holds its directory (a second run there is refused).
    for index, (args, _) in enumerate(cases.values()):
        args[:] = [a.replace(f"{tmp_path / 'run'}", f"{tmp_path / 'run'}-{index}") for a in args]
    # All at once: most of the time is TensorFlow's start-up.
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "training.train", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _) in cases.items()
    }
    failures = []
    for name, process in processes.items():
        out, err = process.communicate(timeout=300)
        expected = cases[name][1]
        line = last_line(err)
        if (
            process.returncode == 0
            or "Traceback" in err
            or not line.startswith("train: error: ")
            or expected not in line
        ):
            failures.append(f"{name}: exit {process.returncode}, last line {line!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# GhostNetV2 / GhostNetV3: every name builds through the trainer and has a real CLI run; by
# default GhostNetV3-0.5's alone, whose training form holds every kind of layer of the others
# (the widths repeat its layers; GhostNetV2's are a subset: checked below);
# GHOSTNET_EXHAUSTIVE=1 runs all (the smallest input the DFC gate takes is 33x33: 40x40 here).

V2V3_MODELS = {
    "ghostnetv2_100": "GhostNet100V2",
    "ghostnetv2_130": "GhostNet130V2",
    "ghostnetv2_160": "GhostNet160V2",
    "ghostnetv3_050": "GhostNet050V3",
    "ghostnetv3_100": "GhostNet100V3",
    "ghostnetv3_130": "GhostNet130V3",
    "ghostnetv3_160": "GhostNet160V3",
}


def test_trainer_builds_every_v2_v3_model():
    """The trainer's builder and arguments for each name (building them is
    tests/test_ghostnet_v2_v3.py's exact-parameter test)."""
    from training import models

    for name, builder_name in V2V3_MODELS.items():
        config = recipes.make_config(
            dataset="cifar10", model_dir="/tmp/x", model=name, image_size=40, dropout_rate=0.0
        )
        builder, kwargs = models.model_builder(config, 10)
        assert builder.__name__ == builder_name
        assert kwargs == {
            "weights": None,
            "classes": 10,
            "input_shape": (40, 40, 3),
            "dropout_rate": 0.0,
        }


@pytest.fixture(scope="module")
def cifar_v2v3(cifar10_dir, tmp_path_factory):
    """100 training and 100 test images per class (1,000 + 1,000)."""
    root = tmp_path_factory.mktemp("cifar_v2v3")
    make_subset(cifar10_dir, root, 100, splits=["train"])
    make_subset(cifar10_dir, root, 100, splits=["test"])
    return root


_V2V3_DEFAULT_RUNS = ("ghostnetv3_050",)


def test_the_default_run_trains_every_kind_of_v2_v3_layer():
    """Every kind of layer (type and settings, sizes aside) of every GhostNetV2/V3 name, as
    the trainer builds it, is in the default run's model: its run trains them all."""
    from test_tflite_convert import _layer_kind

    from training import models

    def kinds(name):
        config = recipes.make_config(
            dataset="cifar10", model_dir="/tmp/x", model=name, image_size=40, dropout_rate=0.0
        )
        builder, kwargs = models.model_builder(config, 10)
        return {_layer_kind(layer) for layer in builder(**kwargs).layers}

    (default,) = _V2V3_DEFAULT_RUNS
    trained = kinds(default)
    for name in sorted(V2V3_MODELS) if EXHAUSTIVE else ("ghostnetv2_100",):
        assert not kinds(name) - trained, name


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, learning_rate",
    [
        pytest.param(
            name,
            0.2 if name.startswith("ghostnetv2") else 0.1,
            marks=() if name in _V2V3_DEFAULT_RUNS else pytest.mark.exhaustive,
        )
        for name in V2V3_MODELS
    ],
)
def test_v2_v3_learn_cifar10_from_the_command_line(name, learning_rate, cifar_v2v3, tmp_path):
    """3 epochs of SGD on 1,000 real CIFAR-10 images at 40x40, evaluated on 1,000 test images.

    Chance is 10% (standard deviation 0.95% with 1,000 images); 13.5% is 3.7 standard
    deviations above it (a model at chance passes once in 10,000 runs). Measured on 500 test
    images (AMD EPYC): ghostnetv2_100 22.4%, _130 23.0%, _160 22.2%; ghostnetv3_050 18.2-21.6%,
    _100 17.4%, _130 18.2%, _160 19.0%; ghostnetv3_050 15.4% on an Intel Xeon (the same seed
    rounds differently there).
    A GhostNetV3 trains in its training form (the re-parameterisable branches, each followed
    by BatchNorm), which makes its run the slower one; it learns better at half the rate."""
    model_dir = tmp_path / "run"
    result = run_train(
        f"--dataset=folder:{cifar_v2v3}",
        f"--model={name}",
        "--image_size=40",
        "--batch_size=50",
        "--epochs=3",
        f"--learning_rate={learning_rate}",
        "--warmup_epochs=0.5",
        "--dropout_rate=0",
        "--eval_every=0",
        "--log_every=1000",
        "--seed=0",
        f"--model_dir={model_dir}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["eval_examples"] == 1000
    assert metrics["steps"] == 3 * 1000 // 50
    print(f"MEASURED {name} CIFAR-10 40px, 3 epochs: test accuracy {metrics['accuracy']:.3f}")
    assert metrics["accuracy"] > 0.135, metrics


@pytest.mark.slow
def test_several_steps_per_call_count_log_and_checkpoint_every_step(cifar_small, tmp_path):
    """`steps_per_execution=5`: Keras runs 5 steps per call of the compiled step and calls
    the callbacks once per call; the run still counts every step (the step count, the
    optimizer's, the checkpoint's), prints its progress and saves at the first call past each
    multiple of `log_every` / `save_every`, and an epoch length it does not divide is refused
    before any training."""
    from training import checkpoint, loop

    config = recipes.make_config(
        dataset=f"folder:{cifar_small}",
        model=MECHANICS_MODEL,
        model_dir=str(tmp_path / "run"),
        image_size=32,
        batch_size=10,  # 10 steps per epoch
        epochs=2,
        steps_per_execution=5,
        log_every=4,
        save_every=3,
        eval_every=0,
        seed=0,
    )
    with pytest.raises(ValueError, match=r"divisors up to it: \[1, 2\]\. Received: steps_per_"):
        loop.plan_steps(dataclasses.replace(config, steps_per_execution=4), 100)
    lines, saved = [], []
    original = checkpoint.ResumableCheckpoint.save

    def save(self):
        saved.append(self.steps)
        return original(self)

    with mock.patch.object(checkpoint.ResumableCheckpoint, "save", save):
        metrics = loop.train(config, printer=lines.append)
    assert (metrics["steps"], metrics["optimizer_iterations"]) == (20, 20), metrics
    assert metrics["first_call_steps"] == 5
    progress = [int(line.split("/")[0][5:]) for line in lines if line.startswith("step ")]
    assert progress == [5, 10, 15, 20], lines  # past 4, 8, 12, and 16 and 20
    assert saved == [5, 10, 10, 15, 20, 20], saved  # each call past a multiple of 3; epoch ends
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["step"] == 20
