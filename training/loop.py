"""The training library behind `python -m training.train`: `train(config)` and its parts.

Everything a run writes goes to `config.model_dir`:

- `checkpoints/ckpt-<step>.weights.h5` + `checkpoints/state.json`: the resumable state (weights,
  optimizer slots, step counter, moving averages), written atomically;
- `logs/`: TensorBoard summaries (`logs/train`, `logs/validation`);
- `config.json`: the resolved settings of the run;
- `model.keras`: the final model (the moving-average weights if `ema_decay > 0`);
- `metrics.json`: final evaluation, step count, wall time, throughput and settings.
"""

import hashlib
import inspect
import os
import pathlib
import re
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

import ghostnet_keras
from ghostnet_keras import data, registry
from training import callbacks as callbacks_lib
from training import strategy as strategy_lib

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
EVAL_METRICS_FILE = "eval_metrics.json"
CONFIG_FILE = "config.json"

_WIDTH_MODELS = re.compile(r"(g_)?ghostnet_\d{3}")


# ---------------------------------------------------------------------------------------------
# Model


def model_builder(config, num_classes):
    """`(builder, kwargs)` for `config`; raises `ValueError` for an unknown model, a `width`
    the model does not take, or a builder argument it does not have."""
    builder = registry.get_builder(config.model)  # ValueError with close matches
    kwargs = {
        "weights": None,
        "classes": num_classes,
        "input_shape": (config.image_size, config.image_size, 3),
    }
    if config.dropout_rate is not None:
        kwargs["dropout_rate"] = config.dropout_rate
    kwargs.update(config.model_kwargs)
    if config.width is not None:
        match = _WIDTH_MODELS.fullmatch(config.model)
        if not match:
            raise ValueError(
                "`width` applies to the ghostnet_* and g_ghostnet_* models only; use "
                f"--model_kwargs for other settings. Received: width={config.width} with "
                f"model={config.model}"
            )
        builder = ghostnet_keras.GGhostNet if match.group(1) else ghostnet_keras.GhostNet
        kwargs["width"] = config.width
    accepted = inspect.signature(builder).parameters
    for key in kwargs:
        if key not in accepted:
            raise ValueError(
                f"Model {config.model} takes no argument {key!r}; it takes: "
                f"{', '.join(accepted)}. Received: model_kwargs={config.model_kwargs}"
            )
    return builder, kwargs


def build_model(config, num_classes):
    """The registry model `config.model` for `num_classes` classes at `config.image_size`.

    `config.width` switches `ghostnet_*` / `g_ghostnet_*` to `GhostNet` / `GGhostNet` at that
    width; `config.model_kwargs` go to the builder; `config.dropout_rate` (unless None)
    replaces the model's dropout before the classifier.
    """
    builder, kwargs = model_builder(config, num_classes)
    model = builder(**kwargs)
    if keras.config.dtype_policy().compute_dtype != "float32":
        # Mixed precision: the loss and metrics want float32 probabilities (Keras's advice).
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(
            model.outputs[0]
        )
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model


def _synchronized_moving_statistics(next_creator, **kwargs):
    """Variable creator: batch-norm moving statistics are averaged over all replicas at each
    update (`aggregation=MEAN`), so that every replica and worker ends with the same values.
    Keras 3 creates them without aggregation: each worker would keep its own."""
    name = kwargs.get("name") or ""
    if not kwargs.get("trainable", True) and ("moving_mean" in name or "moving_var" in name):
        kwargs["aggregation"] = tf.VariableAggregation.MEAN
    return next_creator(**kwargs)


def weights_fingerprint(model):
    """SHA-256 of all the model's weights, in order: equal fingerprints mean equal weights."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Optimizer


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate per step: linear warm-up from 0 over `warmup_epochs`, then cosine
    decay to 0 at the last step (`cosine`), constant (`constant`), or multiplied by
    `lr_decay_factor` at each of `lr_decay_epochs` (`step`, no warm-up). Built from Keras's own
    schedules so that a saved model loads without this package."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    peak = config.learning_rate
    if config.lr_schedule == "step":
        if warmup:
            raise ValueError(
                "--lr_schedule=step has no warm-up; set --warmup_epochs=0. "
                f"Received: warmup_epochs={config.warmup_epochs}"
            )
        boundaries = [e * steps_per_epoch for e in config.lr_decay_epochs]
        values = [peak * config.lr_decay_factor**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    alpha = 0.0 if config.lr_schedule == "cosine" else 1.0  # alpha=1: constant after warm-up
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total - warmup),
        alpha=alpha,
        warmup_target=peak,
        warmup_steps=warmup,
    )


def decayed_variables(model):
    """The variables weight decay applies to: kernels (conv, depthwise, dense: 2+ dims), never
    biases nor batch-norm scales and offsets (1 dim)."""
    return [v for v in model.trainable_variables if len(v.shape) >= 2]


def build_optimizer(config, model, steps_per_epoch):
    """SGD (momentum, Nesterov), RMSprop or AdamW with the schedule, weight decay and EMA.

    Weight decay for SGD and RMSprop is the classic coupled form of the paper's PyTorch/TF
    training (gradient += weight_decay * w before momentum), added as an L2 penalty
    `weight_decay / 2 * sum(w**2)` on the kernels. AdamW decays the kernels directly
    (`w -= lr * weight_decay * w`, decoupled).
    """
    schedule = learning_rate_schedule(config, steps_per_epoch)
    ema = {"use_ema": config.ema_decay > 0, "ema_momentum": config.ema_decay or 0.99}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=config.momentum, nesterov=config.nesterov, **ema
        )
    elif config.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(
            schedule, rho=0.9, momentum=config.momentum, epsilon=1e-3, **ema
        )
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
        decayed = {id(v) for v in decayed_variables(model)}
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if id(v) not in decayed]
        )
    else:
        raise ValueError(
            f"Unknown optimizer: use sgd, rmsprop or adamw. Received: optimizer={config.optimizer}"
        )
    if config.optimizer != "adamw" and config.weight_decay:
        regularizer = keras.regularizers.L2(config.weight_decay / 2)
        for variable in decayed_variables(model):
            variable.regularizer = regularizer
    return optimizer


def compile_model(model, config, steps_per_epoch):
    model.compile(
        optimizer=build_optimizer(config, model, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy"),
        ],
        jit_compile=config.jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    _build_compiled_state(model, config)
    return model


def _patch_keras_multi_worker_logs():
    """Keras 3.15 averages the per-step logs of several workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar loss and metrics
    ("Invalid reduction dimension 0 for input with 0 dimensions"). Under multi-worker
    strategies, average them over the replicas instead (`axis=None`)."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_ghostnet_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._ghostnet_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def _build_compiled_state(model, config):
    """Builds the loss and metric state from symbolic shapes, once, so that `fit` need not.

    Keras 3.15's `fit` otherwise takes its first batch and all-reduces it across replicas
    (`strategy.reduce`) to get example shapes, which fails under MultiWorkerMirroredStrategy
    ("Attempt to convert a value (PerReplica...)"); with the state built, that step is skipped.
    """
    if not hasattr(model, "_symbolic_build") or not hasattr(model, "_maybe_symbolic_build"):
        return
    size = config.image_size
    x = keras.KerasTensor((None, size, size, 3), "float32")
    y = keras.KerasTensor(model.outputs[0].shape, "float32")
    model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


# ---------------------------------------------------------------------------------------------
# Run


def check_model_dir(model_dir):
    """Creates `model_dir` and checks that it is writable (ValueError otherwise)."""
    path = pathlib.Path(model_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(
            f"Cannot write to the model directory ({reason}). Received: model_dir={model_dir}"
        ) from None
    return path


def plan_steps(config, num_train_examples):
    """`(steps_per_epoch, total_steps)`: one pass over the training split per epoch (the last
    partial batch dropped), capped at `config.steps_per_epoch`."""
    per_epoch = num_train_examples // config.batch_size
    if per_epoch < 1:
        raise ValueError(
            f"The global batch size is larger than the {num_train_examples} training examples. "
            f"Received: batch_size={config.batch_size}"
        )
    if config.steps_per_epoch:
        per_epoch = min(per_epoch, config.steps_per_epoch)
    return per_epoch, per_epoch * config.epochs


def _set_precision(config, strategy_name):
    if config.mixed_precision:
        policy = "mixed_bfloat16" if strategy_name == "tpu" else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)


def crop_fraction(config):
    """The evaluation crop: `config.crop_fraction`, else 1.0 for small (CIFAR-like) inputs,
    whose training crops are padded rather than zoomed, and 0.875 otherwise."""
    if config.crop_fraction is not None:
        return config.crop_fraction
    return 1.0 if config.image_size <= data.SMALL_IMAGE_SIZE else 0.875


def _datasets(config, strategy, info, multi_worker):
    spec = config.dataset
    global_batch = config.batch_size

    def train_fn(context):
        return data.make_dataset(
            spec,
            "train",
            training=True,
            batch_size=context.get_per_replica_batch_size(global_batch),
            image_size=config.image_size,
            data_dir=config.data_dir,
            input_context=context,
            seed=config.seed,
            randaugment=config.randaugment,
            crop_fraction=crop_fraction(config),
            cache=config.cache,
            num_classes=info.num_classes,
            repeat=True,
            drop_remainder=True,
        )

    def eval_fn(context):
        return data.make_dataset(
            spec,
            "eval",
            training=False,
            batch_size=context.get_per_replica_batch_size(global_batch),
            image_size=config.image_size,
            data_dir=config.data_dir,
            input_context=context,
            crop_fraction=crop_fraction(config),
            cache=config.cache,
            num_classes=info.num_classes,
            # Several workers must run the same number of steps: repeat and count them.
            repeat=multi_worker,
            drop_remainder=multi_worker,
        )

    train_ds = strategy.distribute_datasets_from_function(train_fn)
    eval_ds = strategy.distribute_datasets_from_function(eval_fn)
    # One worker: a finite evaluation set, read whole each time (no step count: Keras keeps an
    # iterator across epochs when given one). Several workers must run the same number of
    # steps: their shards repeat and the steps are counted.
    eval_steps = -(-info.num_eval_examples // global_batch) if multi_worker else None
    return train_ds, eval_ds, eval_steps


def _write_json(path, payload, is_chief):
    if is_chief:
        callbacks_lib._write_json_atomic(path, payload)


def _save_model(model, path, is_chief):
    """Chief: writes `path` atomically. Others: write to a temporary directory, deleted."""
    if not is_chief:
        tmp_dir = tempfile.mkdtemp(prefix="ghostnet-worker-model-")
        try:
            model.save(os.path.join(tmp_dir, MODEL_FILE))
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    path = pathlib.Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


def _quiet_keras():
    # Keras's notes on datasets we build on purpose: finite evaluation sets of unknown size,
    # and `shuffle=True` (its default) with a tf.data input that shuffles itself.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")


def _evaluate(model, eval_ds, eval_steps):
    results = model.evaluate(eval_ds, steps=eval_steps, verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}


class _NoFinalize:
    """Keeps `fit` from copying the moving averages into the model at its end (we call fit
    twice when resuming mid-epoch, and copy them once, after training)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def __enter__(self):
        self.optimizer.finalize_variable_values = lambda variables: None

    def __exit__(self, *exc):
        del self.optimizer.finalize_variable_values


def train(config, strategy=None, printer=print):
    """Trains `config.model` on `config.dataset`, resuming from `<model_dir>/checkpoints` if a
    checkpoint is there; returns the metrics dict that is written to `metrics.json`.

    Raises `ValueError` for bad settings or data (before any training step where possible).
    """
    started = time.time()
    _quiet_keras()
    model_builder(config, num_classes=1000)  # an unknown model fails before anything starts
    strategy_name = strategy_lib.resolve_strategy_name(config.strategy, config.tpu)
    if strategy is None:
        strategy = strategy_lib.make_strategy(config.strategy, config.tpu, config.cpu_replicas)
    chief = strategy_lib.is_chief(strategy)
    task_type, task_id = strategy_lib.task_info(strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size must be divisible by the {replicas} replicas of the "
            f"{strategy_name} strategy. Received: batch_size={config.batch_size}"
        )
    data.parse_randaugment(config.randaugment)  # ValueError early
    model_dir = pathlib.Path(config.model_dir)
    if chief:
        check_model_dir(model_dir)
    _set_precision(config, strategy_name)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)

    info, steps_per_epoch, total_steps, train_ds, eval_ds, eval_steps, model = _prepare(
        config, strategy
    )

    previous_elapsed = 0.0
    checkpoint = callbacks_lib.ResumableCheckpoint(
        model_dir / CHECKPOINT_DIR,
        save_every=config.save_every,
        is_chief=chief,
        extra_state=lambda: {
            "elapsed_seconds": previous_elapsed + time.time() - started,
            "batch_size": config.batch_size,
            "steps_per_epoch": steps_per_epoch,
        },
    )
    state = checkpoint.restore(model)
    start_step = 0
    if state is not None:
        _check_same_run(state, config, steps_per_epoch, model_dir)
        start_step = state["step"]
        previous_elapsed = state.get("elapsed_seconds", 0.0)
        printer(
            f"Resuming from {model_dir / CHECKPOINT_DIR / state['checkpoint']} at step "
            f"{start_step}/{total_steps}"
        )
    else:
        printer(
            f"Training {config.model} on {config.dataset} ({info.num_classes} classes, "
            f"{info.num_train_examples} training images) for {total_steps} steps "
            f"({config.epochs} epochs x {steps_per_epoch} steps, global batch "
            f"{config.batch_size} on {replicas} replica(s), {strategy_name}), learning rate "
            f"{config.learning_rate:g}"
        )
    _write_json(model_dir / CONFIG_FILE, config.to_dict(), chief)

    logger = callbacks_lib.ThroughputLogger(
        config.log_every,
        config.batch_size,
        total_steps,
        steps_per_epoch,
        printer=printer,
        step_fn=lambda: checkpoint.steps,
    )
    log_dir = model_dir / LOG_DIR if chief else pathlib.Path(tempfile.mkdtemp(prefix="tb-"))
    callbacks = [  # the checkpoint counts the steps: first
        checkpoint,
        logger,
        keras.callbacks.TensorBoard(str(log_dir), update_freq=config.log_every),
    ]
    if config.ema_decay:
        # Validation during training sees the moving averages, like the final evaluation.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=False))

    fit_kwargs = {
        "validation_data": eval_ds if config.eval_every else None,
        "validation_freq": config.eval_every or 1,
        "validation_steps": eval_steps,
        "callbacks": callbacks,
        "verbose": 0,
    }
    first_epoch, offset = divmod(start_step, steps_per_epoch)
    with _NoFinalize(model.optimizer):
        if start_step < total_steps and offset:
            model.fit(
                train_ds,
                initial_epoch=first_epoch,
                epochs=first_epoch + 1,
                steps_per_epoch=steps_per_epoch - offset,
                **fit_kwargs,
            )
            first_epoch += 1
        if first_epoch < config.epochs:
            model.fit(
                train_ds,
                initial_epoch=first_epoch,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                **fit_kwargs,
            )
    steps = checkpoint.steps
    if steps != total_steps:
        raise RuntimeError(f"Training stopped at step {steps} of {total_steps}.")
    with strategy.scope():
        model.optimizer.finalize_variable_values(model.trainable_variables)  # EMA -> model

    results = _evaluate(model, eval_ds, eval_steps)
    fingerprint = weights_fingerprint(model)
    _save_model(model, model_dir / MODEL_FILE, chief)
    if not chief:
        shutil.rmtree(log_dir, ignore_errors=True)
    wall = time.time() - started
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "eval_split": info.eval_split,
        "eval_examples": info.num_eval_examples,
        "accuracy": results.get("accuracy"),
        "top5_accuracy": results.get("top5_accuracy"),
        "loss": results.get("loss"),
        "steps": steps,
        "optimizer_iterations": callbacks_lib.global_step(model),  # fewer if float16 skipped
        "epochs": config.epochs,
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": start_step,
        "steps_this_run": steps - start_step,
        "wall_time_seconds": wall,
        "total_wall_time_seconds": previous_elapsed + wall,
        "train_images_per_second": (
            logger.train_steps * config.batch_size / logger.train_seconds
            if logger.train_seconds
            else None
        ),
        "replicas": replicas,
        "strategy": strategy_name,
        "task": f"{task_type}:{task_id}",
        "weights_sha256": fingerprint,
        "config": config.to_dict(),
    }
    _write_json(model_dir / METRICS_FILE, metrics, chief)
    printer(
        f"Final evaluation on {info.eval_split} ({info.num_eval_examples} images): accuracy "
        f"{metrics['accuracy']:.4f}, top-5 {metrics['top5_accuracy']:.4f}, loss "
        f"{metrics['loss']:.4f}; {steps} steps, {wall:.1f} s"
    )
    printer(f"Weights sha256 ({task_type} {task_id}): {fingerprint}")
    if chief:
        printer(
            f"Wrote to {model_dir}: {MODEL_FILE} (final model), {METRICS_FILE}, "
            f"{CHECKPOINT_DIR}/ (resumable state), {LOG_DIR}/ (tensorboard --logdir "
            f"{model_dir / LOG_DIR})"
        )
    return metrics


def _check_same_run(state, config, steps_per_epoch, model_dir):
    """A checkpoint resumes only the run that wrote it: same global batch, same epoch length
    (the schedule and the step count depend on them)."""
    for name, value in (("batch_size", config.batch_size), ("steps_per_epoch", steps_per_epoch)):
        saved = state.get(name, value)
        if saved != value:
            raise ValueError(
                f"{model_dir} holds a run with {name} {saved}, this one has {value}: resume "
                f"with the same settings or use another --model_dir. Received: {name}={value}"
            )


def _num_workers(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    try:
        return len(resolver.cluster_spec().as_dict().get("worker", ())) + len(
            resolver.cluster_spec().as_dict().get("chief", ())
        )
    except (AttributeError, ValueError):
        return 1


def _prepare(config, strategy):
    """What training and evaluation share: the data set's facts, the step plan, the input
    pipelines and the compiled model (BatchNorm statistics synchronised over replicas).

    Returns `(info, steps_per_epoch, total_steps, train_ds, eval_ds, eval_steps, model)`.
    """
    info = data.dataset_info(config.dataset, config.data_dir)
    steps_per_epoch, total_steps = plan_steps(config, info.num_train_examples)
    multi_worker = _num_workers(strategy) > 1
    if multi_worker:
        _patch_keras_multi_worker_logs()
    train_ds, eval_ds, eval_steps = _datasets(config, strategy, info, multi_worker)
    with strategy.scope(), tf.variable_creator_scope(_synchronized_moving_statistics):
        model = build_model(config, info.num_classes)
    with strategy.scope():
        compile_model(model, config, steps_per_epoch)
    return info, steps_per_epoch, total_steps, train_ds, eval_ds, eval_steps, model


def evaluate(config, strategy=None, printer=print):
    """Evaluates the latest checkpoint (or `model.keras`) of `config.model_dir` on the eval
    split; writes `eval_metrics.json` and returns its dict."""
    _quiet_keras()
    if strategy is None:
        strategy = strategy_lib.make_strategy(config.strategy, config.tpu, config.cpu_replicas)
    chief = strategy_lib.is_chief(strategy)
    model_dir = pathlib.Path(config.model_dir)
    checkpoint_dir = model_dir / CHECKPOINT_DIR
    model_file = model_dir / MODEL_FILE
    if not (checkpoint_dir / callbacks_lib.STATE_FILE).exists() and not model_file.exists():
        raise ValueError(
            f"--eval_only needs a checkpoint ({checkpoint_dir}) or {MODEL_FILE} in the model "
            f"directory; there is neither. Received: model_dir={config.model_dir}"
        )
    _set_precision(config, strategy_lib.resolve_strategy_name(config.strategy, config.tpu))
    info, _, _, _, eval_ds, eval_steps, model = _prepare(config, strategy)
    state = callbacks_lib.ResumableCheckpoint(checkpoint_dir).restore(model)
    if state is not None:
        source = checkpoint_dir / state["checkpoint"]
        with strategy.scope():
            model.optimizer.finalize_variable_values(model.trainable_variables)
    else:
        source = model_file
        model.load_weights(model_file)
    results = _evaluate(model, eval_ds, eval_steps)
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "weights": str(source),
        "eval_split": info.eval_split,
        "eval_examples": info.num_eval_examples,
        **results,
        "steps": state["step"] if state is not None else None,
    }
    _write_json(model_dir / EVAL_METRICS_FILE, metrics, chief)
    printer(
        f"Evaluation of {source} on {info.eval_split} ({info.num_eval_examples} images): "
        f"accuracy {results['accuracy']:.4f}, top-5 {results['top5_accuracy']:.4f}, loss "
        f"{results['loss']:.4f}. Wrote {model_dir / EVAL_METRICS_FILE}"
    )
    return metrics


def run(config, printer=print):
    """`evaluate` if `config.eval_only`, else `train`."""
    tf.get_logger().setLevel("ERROR")
    return (evaluate if config.eval_only else train)(config, printer=printer)
