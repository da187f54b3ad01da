"""Optimizer, learning-rate schedule, weight decay and compilation of a training run."""

import keras

from training import keras_compat

# The phases of a run (`phases`): 0 trains everything from the start (no --weights); with
# --weights, 1 trains the new head alone for --head_epochs, 2 the whole network after that.
ALL, HEAD, FINETUNE = 0, 1, 2


def phases(config):
    """`[(phase, end_epoch)]`: the phases of the run in order, each ending at an epoch."""
    if not config.weights:
        return [(ALL, config.epochs)]
    return [(HEAD, config.head_epochs), (FINETUNE, config.epochs)]


def learning_rate_schedule(config, steps_per_epoch, phase=ALL):
    """The learning rate per step: linear warm-up from 0 over `warmup_epochs`, then cosine
    decay to 0 at the last step (`cosine`), constant (`constant`), or multiplied by
    `lr_decay_factor` at each of `decay_steps` (`step`, no warm-up). Built from Keras's own
    schedules so that a saved model loads without this package.

    Fine-tuning (`phase`): the head trains at the constant `learning_rate` for `head_epochs`;
    the whole network then follows the schedule above at `finetune_learning_rate`, counted
    from the end of the head's epochs (the head's steps are the start of its warm-up ramp, so
    the rate is `finetune_learning_rate` exactly when the second phase starts without one).
    """
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    peak = config.learning_rate
    if phase == HEAD:
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=max(1, total), alpha=1.0)
    if phase == FINETUNE:
        peak = config.finetune_learning_rate
        if config.lr_schedule != "step":
            warmup += config.head_epochs * steps_per_epoch
    if config.lr_schedule == "step":
        if warmup:
            raise ValueError(
                "--lr_schedule=step has no warm-up; set --warmup_epochs=0. "
                f"Received: warmup_epochs={config.warmup_epochs}"
            )
        boundaries = decay_steps(config, steps_per_epoch)
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


def decay_steps(config, steps_per_epoch):
    """The steps where the step schedule decays the rate: at each of `lr_decay_epochs` (which
    may be fractional: the `cifar10` recipe derives them from `lr_decay_fractions`)."""
    return sorted({max(1, round(e * steps_per_epoch)) for e in config.lr_decay_epochs})


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
    schedule = learning_rate_schedule(config, steps_per_epoch, phases(config)[-1][0])
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


def set_phase(model, config, steps_per_epoch, phase):
    """Gives the compiled `model`'s optimizer the schedule of `phase` and makes `fit` trace
    the training step again (the trainable variables of a phase differ: see
    `training.models.set_phase`)."""
    model.optimizer.learning_rate = learning_rate_schedule(config, steps_per_epoch, phase)
    model.make_train_function(force=True)


def uses_xla(jit_compile):
    """Whether the training step is XLA-compiled: with `jit_compile`, and always on JAX, where
    a step that is not runs op by op (many times slower)."""
    return bool(jit_compile) or keras.backend.backend() == "jax"


def compile_model(model, config, steps_per_epoch):
    model.compile(
        optimizer=build_optimizer(config, model, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy"),
        ],
        jit_compile=uses_xla(config.jit_compile),
        steps_per_execution=config.steps_per_execution,
    )
    model.optimizer.build(model.trainable_variables)
    keras_compat.build_metrics_from_shapes(model, config.image_size)
    return model
