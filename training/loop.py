"""The training library behind `python -m training.train`: `train(config)`, `evaluate(config)`.

The parts live beside it: the settings in `training.config` and `training.recipes`, the model in
`training.models`, the optimizer in `training.optimization`, the resumable checkpoints in
`training.checkpoint`, the model directory (its files, one run at a time) in
`training.run_dir`, and the Keras workarounds in `training.keras_compat`. `run_dir` lists what a
run writes.
"""

import pathlib
import shutil
import tempfile
import time
import warnings

import keras
import tensorflow as tf

from ghostnet_keras import data, labels
from ghostnet_keras.constants import CROP_FRACTION
from training import callbacks as callbacks_lib
from training import checkpoint as checkpoint_lib
from training import keras_compat, models, optimization, run_dir
from training import strategy as strategy_lib
from training.run_dir import CHECKPOINT_DIR, LOG_DIR, METRICS_FILE, MODEL_FILE


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
    whose training crops are padded rather than zoomed, and `CROP_FRACTION` (0.875) otherwise."""
    if config.crop_fraction is not None:
        return config.crop_fraction
    return 1.0 if config.image_size <= data.SMALL_IMAGE_SIZE else CROP_FRACTION


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


def _quiet_keras():
    # Keras's notes on datasets we build on purpose: finite evaluation sets of unknown size,
    # and `shuffle=True` (its default) with a tf.data input that shuffles itself.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")


def _evaluate(model, eval_ds, eval_steps):
    results = model.evaluate(eval_ds, steps=eval_steps, verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}


def train(config, strategy=None, printer=print):
    """Trains `config.model` on `config.dataset`, resuming from `<model_dir>/checkpoints` if a
    checkpoint is there; returns the metrics dict that is written to `metrics.json`.

    Raises `ValueError` for bad settings or data (before any training step where possible),
    and when another run trains in the same model directory (`run_dir.RunLock`).
    """
    started = time.time()
    _quiet_keras()
    models.model_builder(config, num_classes=1000)  # an unknown model fails before anything starts
    models.check_weights(config)  # so does a --weights that cannot be used
    strategy_name = strategy_lib.resolve_strategy_name(config.strategy, config.tpu)
    if strategy is None:
        strategy = strategy_lib.make_strategy(config.strategy, config.tpu, config.cpu_replicas)
    chief = strategy_lib.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size must be divisible by the {replicas} replicas of the "
            f"{strategy_name} strategy. Received: batch_size={config.batch_size}"
        )
    data.parse_randaugment(config.randaugment)  # ValueError early
    model_dir = pathlib.Path(config.model_dir)
    if not chief:
        return _train(config, strategy, strategy_name, started, printer)
    run_dir.check_model_dir(model_dir)
    with run_dir.RunLock(model_dir):
        run_dir.check_same_model(config, model_dir)
        return _train(config, strategy, strategy_name, started, printer)


def _train(config, strategy, strategy_name, started, printer):
    chief = strategy_lib.is_chief(strategy)
    task_type, task_id = strategy_lib.task_info(strategy)
    replicas = strategy.num_replicas_in_sync
    model_dir = pathlib.Path(config.model_dir)
    _set_precision(config, strategy_name)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)

    info, steps_per_epoch, total_steps, train_ds, eval_ds, eval_steps, model = _prepare(
        config, strategy
    )
    backbone = models.backbone_layers(config, info.num_classes) if config.weights else set()
    class_names = _class_names(info)

    previous_elapsed = 0.0
    checkpoint = checkpoint_lib.ResumableCheckpoint(
        model_dir / CHECKPOINT_DIR,
        save_every=config.save_every,
        is_chief=chief,
        printer=printer,
        extra_state=lambda: {
            "elapsed_seconds": previous_elapsed + time.time() - started,
            "batch_size": config.batch_size,
            "steps_per_epoch": steps_per_epoch,
        },
    )
    state = checkpoint.restore(model)
    start_step = 0
    if state is not None:
        run_dir.check_same_run(state, config, steps_per_epoch, model_dir)
        start_step = state["step"]
        if start_step > total_steps:
            raise ValueError(
                f"{model_dir} holds a run at step {start_step}, past the {total_steps} steps "
                f"of this one ({config.epochs} epochs x {steps_per_epoch}): give at least as "
                f"many --epochs, or use another --model_dir. Received: epochs={config.epochs}"
            )
        finished = run_dir.finished_metrics(model_dir, start_step)
        if start_step == total_steps and finished is not None:
            printer(_already_finished(model_dir, finished))
            return finished
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
    run_dir.write_json(model_dir / run_dir.CONFIG_FILE, config.to_dict(), chief)
    if class_names is not None and chief:
        labels.write_labels_file(model_dir / labels.LABELS_FILE, class_names)

    logger = callbacks_lib.ThroughputLogger(
        config.log_every,
        config.batch_size,
        total_steps,
        steps_per_epoch,
        printer=printer,
        step_fn=lambda: checkpoint.steps,
    )
    log_dir = model_dir / LOG_DIR if chief else pathlib.Path(tempfile.mkdtemp(prefix="tb-"))
    interrupt = callbacks_lib.SaveOnInterrupt(checkpoint.save)
    callbacks = [  # the checkpoint counts the steps: first; Ctrl-C saves that count: last
        checkpoint,
        logger,
        keras.callbacks.TensorBoard(str(log_dir), update_freq=config.log_every),
        interrupt,
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
    with interrupt, keras_compat.no_ema_finalize(model.optimizer):
        for phase, end_epoch in optimization.phases(config):
            if checkpoint.steps >= end_epoch * steps_per_epoch:
                continue  # a phase a resumed run has already done
            models.set_phase(model, backbone, phase)
            optimization.set_phase(model, config, steps_per_epoch, phase)
            _fit(model, train_ds, checkpoint.steps, steps_per_epoch, end_epoch, fit_kwargs)
    steps = checkpoint.steps
    if steps != total_steps:
        raise RuntimeError(f"Training stopped at step {steps} of {total_steps}.")
    with strategy.scope():
        model.optimizer.finalize_variable_values(model.trainable_variables)  # EMA -> model

    results = _evaluate(model, eval_ds, eval_steps)
    fingerprint = models.weights_fingerprint(model)
    run_dir.save_model(model, model_dir / MODEL_FILE, chief, class_names)
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
        "optimizer_iterations": checkpoint_lib.global_step(model),  # fewer if float16 skipped
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
    run_dir.write_json(model_dir / METRICS_FILE, metrics, chief)
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


def _fit(model, train_ds, start_step, steps_per_epoch, end_epoch, fit_kwargs):
    """Trains from `start_step` to the end of epoch `end_epoch`: the rest of an interrupted
    epoch first, then whole epochs."""
    first_epoch, offset = divmod(start_step, steps_per_epoch)
    if offset:
        model.fit(
            train_ds,
            initial_epoch=first_epoch,
            epochs=first_epoch + 1,
            steps_per_epoch=steps_per_epoch - offset,
            **fit_kwargs,
        )
        first_epoch += 1
    if first_epoch < end_epoch:
        model.fit(
            train_ds,
            initial_epoch=first_epoch,
            epochs=end_epoch,
            steps_per_epoch=steps_per_epoch,
            **fit_kwargs,
        )


def _already_finished(model_dir, metrics):
    """The one line of a run whose model directory holds it finished."""
    accuracy = metrics.get("accuracy")
    score = f", accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
    return (
        f"Already finished: {model_dir} holds this run, trained for all its {metrics['steps']} "
        f"steps{score} ({MODEL_FILE}, {METRICS_FILE}); nothing to do (use a new --model_dir, "
        "or more --epochs to train on)."
    )


def _class_names(info):
    """The data set's class names in index order (as strings), or None if it has none."""
    names = info.class_names
    if not names or len(names) != info.num_classes:
        return None
    return [str(name) for name in names]


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
        keras_compat.average_multi_worker_logs()
    train_ds, eval_ds, eval_steps = _datasets(config, strategy, info, multi_worker)
    with strategy.scope(), tf.variable_creator_scope(keras_compat.synchronized_moving_statistics):
        model = models.build_model(config, info.num_classes, _class_names(info))
    if config.weights:  # the optimizer holds what the last phase trains: fine-tuning's
        backbone = models.backbone_layers(config, info.num_classes)
        models.set_phase(model, backbone, optimization.phases(config)[-1][0])
    with strategy.scope():
        optimization.compile_model(model, config, steps_per_epoch)
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
    if not (checkpoint_dir / checkpoint_lib.STATE_FILE).exists() and not model_file.exists():
        raise ValueError(
            f"--eval_only needs a checkpoint ({checkpoint_dir}) or {MODEL_FILE} in the model "
            f"directory; there is neither. Received: model_dir={config.model_dir}"
        )
    _set_precision(config, strategy_lib.resolve_strategy_name(config.strategy, config.tpu))
    info, _, _, _, eval_ds, eval_steps, model = _prepare(config, strategy)
    state = checkpoint_lib.ResumableCheckpoint(checkpoint_dir, printer=printer).restore(model)
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
    run_dir.write_json(model_dir / run_dir.EVAL_METRICS_FILE, metrics, chief)
    printer(
        f"Evaluation of {source} on {info.eval_split} ({info.num_eval_examples} images): "
        f"accuracy {results['accuracy']:.4f}, top-5 {results['top5_accuracy']:.4f}, loss "
        f"{results['loss']:.4f}. Wrote {model_dir / run_dir.EVAL_METRICS_FILE}"
    )
    return metrics


def run(config, printer=print, verbose=False):
    """`evaluate` if `config.eval_only`, else `train`. Unless `verbose`, TensorFlow's Python
    log shows errors only."""
    if not verbose:
        tf.get_logger().setLevel("ERROR")
    return (evaluate if config.eval_only else train)(config, printer=printer)
