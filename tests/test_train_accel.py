"""The trainer on an accelerator, proven on the CPU (issue 22): `--mixed_precision` and
`--jit_compile` train registry models (the loss falls), the dtype policy of a run does not leak
into the process, and `--strategy=mirrored` trains over two (virtual CPU) devices."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

import ghostnet_keras

from conftest import EXHAUSTIVE, MECHANICS_MODEL, ROOT, make_subset

# Every registry model under GHOSTNET_EXHAUSTIVE=1 (minutes each on a CPU: XLA compiles the
# float16 training step); the shallowest CIFAR model otherwise.
ACCEL_MODELS = ghostnet_keras.list_models() if EXHAUSTIVE else [MECHANICS_MODEL]
STEPS = 8  # float16's dynamic loss scale starts at 2**15 and skips the first steps' overflows


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCEL_MODELS)
def test_mixed_precision_and_xla_make_the_loss_fall(name):
    from training import loop, models, optimization, recipes

    size = 32 if name in ("vgg16_cifar", "ghost_vgg16_cifar") or "56" in name else 64
    config = recipes.make_config(
        "cifar10",
        model=name,
        dataset="cifar10",
        model_dir="unused",
        image_size=size,
        batch_size=2,
        learning_rate=0.01,
        dropout_rate=0.0,
        mixed_precision=True,
        jit_compile=True,
    )
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
    labels = keras.utils.to_categorical([3, 7], 10)
    with loop.precision_scope(config, "one_device"):
        model = models.build_model(config, 10)
        optimization.compile_model(model, config, steps_per_epoch=1)
        assert model.jit_compile
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert {layer.compute_dtype for layer in model.layers if layer.weights} == {"float16"}
        assert model.output.dtype == "float32"  # the loss sees float32 probabilities
        history = model.fit(images, labels, batch_size=2, epochs=STEPS, verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # given back after the run
    losses = history.history["loss"]
    assert all(math.isfinite(loss) for loss in losses), losses
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


@pytest.mark.slow
def test_mirrored_over_two_virtual_cpu_devices(cifar10_dir, tmp_path):
    """Two replicas of the CPU (`--cpu_replicas=2`), the in-memory input sharded between them:
    the run trains, evaluates and says it ran on 2 replicas of the mirrored strategy. The 11
    test images leave one replica an empty last batch (which TensorFlow's oneDNN kernels fail
    on: the command line turns them off), and its metrics are one device's on the same files."""
    data = make_subset(cifar10_dir, tmp_path / "data", 1)
    extra = sorted((cifar10_dir / "test" / "cat").iterdir())[1]
    (data / "test" / "cat" / extra.name).symlink_to(extra)
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            f"--dataset=folder:{data}",
            f"--model={MECHANICS_MODEL}",
            f"--model_dir={run}",
            "--image_size=32",
            "--batch_size=2",  # one image per replica
            "--epochs=1",
            "--steps_per_epoch=2",
            "--warmup_epochs=0",
            "--eval_every=0",
            "--in_memory",
            "--strategy=mirrored",
            "--cpu_replicas=2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["replicas"], metrics["steps"]) == ("mirrored", 2, 2)
    assert metrics["eval_examples"] == 11 and math.isfinite(metrics["loss"])
    from training import loop, recipes

    one_device = loop.evaluate(
        recipes.make_config(
            dataset=f"folder:{data}",
            model=MECHANICS_MODEL,
            model_dir=str(run),
            image_size=32,
            batch_size=2,
            in_memory=True,
            strategy="one_device",
        ),
        printer=lambda line: None,
    )
    assert one_device["eval_examples"] == 11
    assert one_device["accuracy"] == metrics["accuracy"], (one_device, metrics)
    assert one_device["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    assert "on 2 replica(s), mirrored" in result.stdout
