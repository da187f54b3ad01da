"""The training library behind `python -m training.train`: `train(config)`, `evaluate(config)`.

The parts live beside it: the settings in `training.config` and `training.recipes`, the model in
`training.models`, the optimizer in `training.optimization`, the resumable checkpoints in
`training.checkpoint`, the model directory (its files, one run at a time) in
`training.run_dir`, and the Keras workarounds in `training.keras_compat`. `run_dir` lists what a
run writes.
"""

import contextlib
import dataclasses
import importlib.util
import pathlib
import shutil
import tempfile
import time
import warnings

import keras

from ghostnet_keras import data, labels
from ghostnet_keras.constants import CROP_FRACTION, SMALL_IMAGE_SIZE
from training import callbacks as callbacks_lib
from training import checkpoint as checkpoint_lib
from training import keras_compat, memory_data, models, optimization, run_dir
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
    if per_epoch % config.steps_per_execution:
        raise ValueError(
            f"steps_per_execution must divide the {per_epoch} steps of an epoch (Keras would "
            f"run whole calls past the epoch's end); divisors up to it: "
            f"{[n for n in range(1, config.steps_per_execution) if per_epoch % n == 0]}. "
            f"Received: steps_per_execution={config.steps_per_execution}"
        )
    return per_epoch, per_epoch * config.epochs


def precision_policy(config, strategy_name):
    """The Keras dtype policy of the run: `mixed_float16` with `--mixed_precision`
    (`mixed_bfloat16` on a TPU), else `float32`."""
    if not config.mixed_precision:
        return "float32"
    return "mixed_bfloat16" if strategy_name == "tpu" else "mixed_float16"


@contextlib.contextmanager
def precision_scope(config, strategy_name):
    """Sets the run's dtype policy (Keras's is global) and gives the caller's back afterwards,
    so that a mixed-precision run leaves later models of the process in float32."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision_policy(config, strategy_name))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def crop_fraction(config):
    """The evaluation crop: `config.crop_fraction`, else 1.0 for small (CIFAR-like) inputs,
    whose training crops are padded rather than zoomed, and `CROP_FRACTION` (0.875) otherwise."""
    if config.crop_fraction is not None:
        return config.crop_fraction
    return 1.0 if config.image_size <= SMALL_IMAGE_SIZE else CROP_FRACTION


def check_backend(config):
    """Refuses what needs TensorFlow on another Keras backend: there the trainer runs the
    in-memory input alone (`memory_data.array_datasets`), on one device (tested on JAX, in
    .ci/jax; not on PyTorch)."""
    if strategy_lib.uses_tensorflow():
        return
    backend = keras.backend.backend()
    if not config.in_memory:
        raise ValueError(
            f"On the {backend} backend the trainer reads its data in memory (--in_memory, "
            "image folders of small images such as CIFAR-10): the tf.data input needs "
            f"TensorFlow (KERAS_BACKEND=tensorflow). Received: in_memory={config.in_memory}"
        )
    if config.randaugment:
        raise ValueError(
            f"RandAugment runs in the tf.data input, which needs TensorFlow; on the {backend} "
            f"backend training crops and flips only. Received: randaugment={config.randaugment!r}"
        )


def _datasets(config, strategy, info, multi_worker):
    if not strategy_lib.uses_tensorflow():
        train_ds, eval_ds = memory_data.array_datasets(config, info, crop_fraction(config))
        return train_ds, eval_ds, None
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

    if config.in_memory:
        train_fn, eval_fn = memory_data.dataset_fns(
            config, info, crop_fraction(config), multi_worker
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
    check_backend(config)
    strategy_name = strategy_lib.resolve_strategy_name(config.strategy, config.tpu)
    if strategy is None:
        strategy = strategy_lib.make_strategy(config.strategy, config.tpu, config.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size must be divisible by the {replicas} replicas of the "
            f"{strategy_name} strategy. Received: batch_size={config.batch_size}"
        )
    if strategy_lib.uses_tensorflow():
        data.parse_randaugment(config.randaugment)  # ValueError early
    model_dir = pathlib.Path(config.model_dir)
    with precision_scope(config, strategy_name):
        if not strategy_lib.is_chief(strategy):
            return _train(config, strategy, strategy_name, started, printer)
        run_dir.check_model_dir(model_dir)
        with run_dir.RunLock(model_dir):
            run_dir.check_same_model(config, model_dir)
            return _train(config, strategy, strategy_name, started, printer)


@dataclasses.dataclass
class Prepared:
    """What training and evaluation share (`prepare`): the data set's facts, the step plan,
    the distributed input pipelines and the compiled model."""

    info: object  # ghostnet_keras.data.DataInfo
    steps_per_epoch: int
    total_steps: int
    train_ds: object
    eval_ds: object
    eval_steps: int | None  # None: the whole (finite) evaluation set
    model: keras.Model


@dataclasses.dataclass
class _Run:
    """One training call: the process that runs it and where it starts."""

    config: object
    strategy: object
    strategy_name: str
    started: float
    printer: object
    model_dir: pathlib.Path
    chief: bool
    previous_elapsed: float = 0.0  # wall time of the earlier runs this one resumes
    start_step: int = 0

    def elapsed(self):
        return self.previous_elapsed + time.time() - self.started


def _train(config, strategy, strategy_name, started, printer):
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    run = _Run(
        config,
        strategy,
        strategy_name,
        started,
        printer,
        pathlib.Path(config.model_dir),
        strategy_lib.is_chief(strategy),
    )
    prepared = prepare(config, strategy)
    checkpoint = _checkpoint(run, prepared.steps_per_epoch)
    finished = _restore(run, prepared, checkpoint)
    if finished is not None:
        return finished
    _write_run_files(run, prepared)
    logger = callbacks_lib.ThroughputLogger(
        config.log_every,
        config.batch_size,
        prepared.total_steps,
        prepared.steps_per_epoch,
        printer=printer,
        step_fn=lambda: checkpoint.steps,
    )
    _run_phases(run, prepared, checkpoint, logger)
    with strategy.scope():
        prepared.model.optimizer.finalize_variable_values(prepared.model.trainable_variables)
    results = _evaluate(prepared.model, prepared.eval_ds, prepared.eval_steps)
    return _finish(run, prepared, checkpoint, logger, results)


def _checkpoint(run, steps_per_epoch):
    """The run's resumable checkpoint (it also counts the steps)."""
    config = run.config
    return checkpoint_lib.ResumableCheckpoint(
        run.model_dir / CHECKPOINT_DIR,
        save_every=config.save_every,
        is_chief=run.chief,
        printer=run.printer,
        extra_state=lambda: {
            "elapsed_seconds": run.elapsed(),
            "batch_size": config.batch_size,
            "steps_per_epoch": steps_per_epoch,
        },
    )


def _restore(run, prepared, checkpoint):
    """Restores the latest checkpoint into the model, if there is one, and says where the run
    starts; returns the metrics of a run that had already finished (else None)."""
    config, model_dir, total_steps = run.config, run.model_dir, prepared.total_steps
    state = checkpoint.restore(prepared.model)
    if state is None:
        run.printer(
            f"Training {config.model} on {config.dataset} ({prepared.info.num_classes} "
            f"classes, {prepared.info.num_train_examples} training images) for {total_steps} "
            f"steps ({config.epochs} epochs x {prepared.steps_per_epoch} steps, global batch "
            f"{config.batch_size} on {run.strategy.num_replicas_in_sync} replica(s), "
            f"{run.strategy_name}), learning rate {config.learning_rate:g}"
        )
        return None
    run_dir.check_same_run(
        state,
        {"batch_size": config.batch_size, "steps_per_epoch": prepared.steps_per_epoch},
        model_dir,
    )
    run.start_step = state["step"]
    offset = run.start_step % prepared.steps_per_epoch
    if offset % config.steps_per_execution:
        raise ValueError(
            f"{model_dir} holds a run stopped {offset} steps into an epoch: resume it with a "
            f"steps_per_execution that divides {offset} (1 always does). "
            f"Received: steps_per_execution={config.steps_per_execution}"
        )
    if run.start_step > total_steps:
        raise ValueError(
            f"{model_dir} holds a run at step {run.start_step}, past the {total_steps} steps "
            f"of this one ({config.epochs} epochs x {prepared.steps_per_epoch}): give at least "
            f"as many --epochs, or use another --model_dir. Received: epochs={config.epochs}"
        )
    finished = run_dir.finished_metrics(model_dir, run.start_step)
    if run.start_step == total_steps and finished is not None:
        run.printer(_already_finished(model_dir, finished))
        return finished
    run.previous_elapsed = state.get("elapsed_seconds", 0.0)
    run.printer(
        f"Resuming from {model_dir / CHECKPOINT_DIR / state['checkpoint']} at step "
        f"{run.start_step}/{total_steps}"
    )
    return None


def _write_run_files(run, prepared):
    """The run's settings (`config.json`) and the data set's class names (`labels.txt`)."""
    run_dir.write_json(run.model_dir / run_dir.CONFIG_FILE, run.config.to_dict(), run.chief)
    class_names = _class_names(prepared.info)
    if class_names is not None and run.chief:
        labels.write_labels_file(run.model_dir / labels.LABELS_FILE, class_names)


def _run_phases(run, prepared, checkpoint, logger):
    """Fits each phase of the run (`optimization.phases`) that the checkpoint has not done
    yet; Ctrl-C saves a checkpoint and stops."""
    config, model = run.config, prepared.model
    backbone = (
        models.backbone_layers(config, prepared.info.num_classes) if config.weights else set()
    )
    log_dir = run.model_dir / LOG_DIR
    if not run.chief:
        log_dir = pathlib.Path(tempfile.mkdtemp(prefix="tb-"))
    interrupt = callbacks_lib.SaveOnInterrupt(checkpoint.save)
    callbacks = [  # the checkpoint counts the steps: first; Ctrl-C saves that count: last
        checkpoint,
        logger,
        *_tensorboard(log_dir, config),
        interrupt,
    ]
    if config.ema_decay:
        # Validation during training sees the moving averages, like the final evaluation.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    fit_kwargs = {
        "validation_data": prepared.eval_ds if config.eval_every else None,
        "validation_freq": config.eval_every or 1,
        "validation_steps": prepared.eval_steps,
        "callbacks": callbacks,
        "verbose": 0,
    }
    steps_per_epoch = prepared.steps_per_epoch
    try:
        with interrupt, keras_compat.no_ema_finalize(model.optimizer):
            for phase, end_epoch in optimization.phases(config):
                if checkpoint.steps >= end_epoch * steps_per_epoch:
                    continue  # a phase a resumed run has already done
                models.set_phase(model, backbone, phase)
                optimization.set_phase(model, config, steps_per_epoch, phase)
                fit_from_step(
                    model,
                    prepared.train_ds,
                    checkpoint.steps,
                    steps_per_epoch,
                    end_epoch,
                    **fit_kwargs,
                )
    finally:
        if not run.chief:
            shutil.rmtree(log_dir, ignore_errors=True)
    if checkpoint.steps != prepared.total_steps:
        raise RuntimeError(
            f"Training stopped at step {checkpoint.steps} of {prepared.total_steps}."
        )


def _has_tensorboard():
    """Whether Keras's TensorBoard callback can log: it writes with TensorFlow."""
    return importlib.util.find_spec("tensorflow") is not None


def _tensorboard(log_dir, config):
    """Keras's TensorBoard callback, or none without TensorFlow."""
    if not _has_tensorboard():
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), update_freq=config.log_every)]


def _finish(run, prepared, checkpoint, logger, results):
    """Saves the final model, writes `metrics.json`, prints the summary; returns the metrics."""
    config, model_dir = run.config, run.model_dir
    model = prepared.model
    fingerprint = models.weights_fingerprint(model)
    run_dir.save_model(model, model_dir / MODEL_FILE, run.chief, _class_names(prepared.info))
    task_type, task_id = strategy_lib.task_info(run.strategy)
    steps = checkpoint.steps
    wall = time.time() - run.started
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "eval_split": prepared.info.eval_split,
        "eval_examples": prepared.info.num_eval_examples,
        "accuracy": results.get("accuracy"),
        "top5_accuracy": results.get("top5_accuracy"),
        "loss": results.get("loss"),
        "steps": steps,
        "optimizer_iterations": checkpoint_lib.global_step(model),  # fewer if float16 skipped
        "epochs": config.epochs,
        "steps_per_epoch": prepared.steps_per_epoch,
        "resumed_from_step": run.start_step,
        "steps_this_run": steps - run.start_step,
        "wall_time_seconds": wall,
        "total_wall_time_seconds": run.previous_elapsed + wall,
        "train_images_per_second": (
            logger.train_steps * config.batch_size / logger.train_seconds
            if logger.train_seconds
            else None
        ),
        # The first call of the compiled step (steps_per_execution steps), with its tracing
        # and compilation.
        "first_call_seconds": logger.first_call_seconds,
        "first_call_steps": logger.first_call_steps,
        "replicas": run.strategy.num_replicas_in_sync,
        "strategy": run.strategy_name,
        "task": f"{task_type}:{task_id}",
        "weights_sha256": fingerprint,
        "config": config.to_dict(),
    }
    run_dir.write_json(model_dir / METRICS_FILE, metrics, run.chief)
    _print_summary(run, prepared, metrics)
    return metrics


def _print_summary(run, prepared, metrics):
    model_dir, printer = run.model_dir, run.printer
    info = prepared.info
    printer(
        f"Final evaluation on {info.eval_split} ({info.num_eval_examples} images): accuracy "
        f"{metrics['accuracy']:.4f}, top-5 {metrics['top5_accuracy']:.4f}, loss "
        f"{metrics['loss']:.4f}; {metrics['steps']} steps, {metrics['wall_time_seconds']:.1f} s"
    )
    task_type, task_id = metrics["task"].split(":")
    printer(f"Weights sha256 ({task_type} {task_id}): {metrics['weights_sha256']}")
    if run.chief:
        logs = (
            f", {LOG_DIR}/ (tensorboard --logdir {model_dir / LOG_DIR})"
            if _has_tensorboard()
            else ""
        )
        printer(
            f"Wrote to {model_dir}: {MODEL_FILE} (final model), {METRICS_FILE}, "
            f"{CHECKPOINT_DIR}/ (resumable state){logs}"
        )


def fit_from_step(model, dataset, start_step, steps_per_epoch, end_epoch, repeats=True, **kwargs):
    """Trains from `start_step` to the end of epoch `end_epoch` with `model.fit(dataset,
    **kwargs)`: the rest of an interrupted epoch first, then whole epochs (of
    `steps_per_epoch` steps if the dataset `repeats`, else one pass over it each). Returns the
    `History` of each `fit` call. The trainer's and `training.detect`'s resume."""
    first_epoch, offset = divmod(start_step, steps_per_epoch)
    histories = []
    if offset:
        histories.append(
            model.fit(
                dataset,
                initial_epoch=first_epoch,
                epochs=first_epoch + 1,
                steps_per_epoch=steps_per_epoch - offset,
                **kwargs,
            )
        )
        first_epoch += 1
    if first_epoch < end_epoch:
        histories.append(
            model.fit(
                dataset,
                initial_epoch=first_epoch,
                epochs=end_epoch,
                steps_per_epoch=steps_per_epoch if repeats else None,
                **kwargs,
            )
        )
    return histories


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


def prepare(config, strategy):
    """What training and evaluation share: the data set's facts, the step plan, the input
    pipelines and the compiled model (BatchNorm statistics synchronised over replicas), built
    under the dtype policy in force (`precision_scope`). Returns a `Prepared`."""
    info = data.dataset_info(config.dataset, config.data_dir)
    steps_per_epoch, total_steps = plan_steps(config, info.num_train_examples)
    multi_worker = _num_workers(strategy) > 1
    if multi_worker:
        keras_compat.average_multi_worker_logs()
    train_ds, eval_ds, eval_steps = _datasets(config, strategy, info, multi_worker)
    with strategy.scope(), _moving_statistics_scope():
        model = models.build_model(config, info.num_classes, _class_names(info))
    if config.weights:  # the optimizer holds what the last phase trains: fine-tuning's
        backbone = models.backbone_layers(config, info.num_classes)
        models.set_phase(model, backbone, optimization.phases(config)[-1][0])
    with strategy.scope():
        optimization.compile_model(model, config, steps_per_epoch)
    return Prepared(info, steps_per_epoch, total_steps, train_ds, eval_ds, eval_steps, model)


def _moving_statistics_scope():
    """BatchNorm statistics averaged over replicas (`tf.distribute` only)."""
    if not strategy_lib.uses_tensorflow():
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.variable_creator_scope(keras_compat.synchronized_moving_statistics)


def evaluate(config, strategy=None, printer=print):
    """Evaluates the latest checkpoint (or `model.keras`) of `config.model_dir` on the eval
    split; writes `eval_metrics.json` and returns its dict."""
    _quiet_keras()
    check_backend(config)
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
    with precision_scope(config, strategy_lib.resolve_strategy_name(config.strategy, config.tpu)):
        return _evaluate_checkpoint(config, strategy, printer, model_dir, chief)


def _evaluate_checkpoint(config, strategy, printer, model_dir, chief):
    checkpoint_dir = model_dir / CHECKPOINT_DIR
    model_file = model_dir / MODEL_FILE
    prepared = prepare(config, strategy)
    info, model = prepared.info, prepared.model
    eval_ds, eval_steps = prepared.eval_ds, prepared.eval_steps
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
    if not verbose and strategy_lib.uses_tensorflow():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    return (evaluate if config.eval_only else train)(config, printer=printer)
