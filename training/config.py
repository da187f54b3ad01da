"""Every setting of a training run, declared once.

`TrainConfig` is the declaration: each field is one setting, with its default, its help text,
its kind (how a command-line flag parses it) and, where it has them, its choices. Everything
else derives from it: `DEFAULTS` (`defaults()`), the absl flags of `python -m training.train`
(`define_flags`), the validation of choices (`training.recipes.validate`) and the recipes
(`training.recipes.RECIPES`, which may set only declared settings).

A default of `None` means "derived when the config is made" (see `training.recipes.make_config`
and each field's `default_help`).
"""

import copy
import dataclasses

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("cosine", "step", "constant")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
# --cpu_replicas runs TensorFlow's own CPU kernels: its oneDNN ones (TensorFlow 2.21) mishandle
# the empty batch that a replica gets at the end of an evaluation set that does not divide
# evenly among the replicas (a Conv2D hands its input on unchanged, and the next layer fails).
# The switch must be set before TensorFlow loads: the command line does that.
ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"

# The default warm-up: the paper's ImageNet recipe warms up for 5 of its 400 epochs. Without an
# explicit --warmup_epochs, a run gets min(5, epochs * WARMUP_FRACTION) epochs of warm-up (none
# with --lr_schedule=step), so that a short run (--epochs=2) never fails on its default.
WARMUP_EPOCHS = 5.0
WARMUP_FRACTION = 0.1
# Fine-tuning (--weights): the whole network trains at this fraction of the head's learning
# rate unless --finetune_learning_rate is given (the Keras transfer-learning guide lowers it
# 10x or more for the second phase).
FINETUNE_FACTOR = 0.1

KINDS = ("string", "integer", "float", "boolean", "enum", "list")


def setting(default, help, kind, *, choices=None, default_help=None, flag=True):  # noqa: A002
    """One setting: a dataclass field whose metadata says how to show and parse it.

    Args:
        default: the value used when neither a flag nor a recipe sets it.
        help: one sentence for `--help`.
        kind: how a flag parses it: one of `KINDS`.
        choices: the allowed values (flags of kind `enum`; checked by `validate`).
        default_help: how `--help` describes the default, if not by its value.
        flag: whether the command line has a flag for it.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown setting kind. Received: kind={kind!r}")
    metadata = {
        "help": help,
        "kind": kind,
        "choices": tuple(choices) if choices else None,
        "default_help": default_help,
        "flag": flag,
    }
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run; build it with `training.recipes.make_config`."""

    # Model
    model: str = setting("ghostnet_100", "Registry model name, e.g. ghostnet_050.", "string")
    width: float | None = setting(
        None,
        "Width multiplier for ghostnet_*/g_ghostnet_* models (switches them to GhostNet/GGhostNet "
        "at that width).",
        "float",
        default_help="the model's own",
    )
    model_kwargs: dict = setting(
        {},
        "More builder arguments: key=value,... (e.g. include_preprocessing=True).",
        "string",
        default_help="none",
    )
    weights: str | None = setting(
        None,
        "Start from these weights: 'imagenet' (the model's published checkpoint), a "
        ".weights.h5 file or a .keras file of an earlier run; the classifier is replaced when "
        "the data set has other classes.",
        "string",
        default_help="none: random initialisation",
    )
    head_epochs: int = setting(
        0,
        "With --weights: first epochs that train the classifier head alone (backbone frozen, "
        "its BatchNorm in inference mode); 0: none.",
        "integer",
    )
    finetune_learning_rate: float | None = setting(
        None,
        "With --weights: peak learning rate of the whole network after --head_epochs.",
        "float",
        default_help=f"{FINETUNE_FACTOR:g} x --learning_rate",
    )
    # Data
    dataset: str | None = setting(
        None, "A TFDS name (imagenet2012, cifar10, ...) or folder:PATH.", "string", default_help=""
    )
    data_dir: str | None = setting(
        None, "TFDS data directory.", "string", default_help="TFDS's default"
    )
    model_dir: str | None = setting(
        None,
        "Where checkpoints, logs, model and metrics go (required).",
        "string",
        default_help="",
    )
    image_size: int = setting(224, "Training and evaluation resolution.", "integer")
    crop_fraction: float | None = setting(
        None,
        "Evaluation centre crop.",
        "float",
        default_help="0.875 (resize 256, crop 224); 1.0 at <= 64 px",
    )
    # Schedule
    batch_size: int = setting(
        256, "GLOBAL batch size over all replicas (must divide by their number).", "integer"
    )
    epochs: int = setting(100, "Training epochs.", "integer")
    steps_per_epoch: int | None = setting(
        None, "Cap on the steps per epoch.", "integer", default_help="one pass over the data"
    )
    # Optimizer
    optimizer: str = setting(
        "sgd", "Optimizer (rmsprop: rho 0.9, epsilon 1e-3).", "enum", choices=OPTIMIZERS
    )
    momentum: float = setting(0.9, "SGD/RMSprop momentum.", "float")
    nesterov: bool = setting(True, "Nesterov momentum for SGD.", "boolean")
    learning_rate: float | None = setting(
        None,
        "Peak learning rate.",
        "float",
        default_help="base_learning_rate * batch_size / base_batch_size, 0.4 * batch / 1024",
    )
    base_learning_rate: float = setting(
        0.4, "Learning rate at base_batch_size (linear scaling rule).", "float", flag=False
    )
    base_batch_size: int = setting(1024, "Batch size of base_learning_rate.", "integer", flag=False)
    lr_schedule: str = setting(
        "cosine",
        "Learning-rate schedule: cosine (to 0), constant, or step (at --lr_decay_epochs or "
        "--lr_decay_fractions, by --lr_decay_factor).",
        "enum",
        choices=SCHEDULES,
    )
    lr_decay_epochs: tuple = setting(
        (), "Epochs where --lr_schedule=step decays the rate.", "list", default_help="none"
    )
    lr_decay_fractions: tuple = setting(
        (),
        "Where --lr_schedule=step decays the rate when --lr_decay_epochs is not given: fractions "
        "of all the training steps, e.g. 0.5,0.75 (the schedule then scales with --epochs).",
        "list",
        default_help="none",
    )
    lr_decay_factor: float = setting(0.1, "Factor of each step decay.", "float")
    warmup_epochs: float | None = setting(
        None,
        "Linear warm-up epochs (fractions allowed).",
        "float",
        default_help=(
            f"{WARMUP_EPOCHS:g}, or {WARMUP_FRACTION:g} x --epochs if that is less (short "
            "runs); 0 with --lr_schedule=step"
        ),
    )
    # Regularization
    weight_decay: float = setting(4e-5, "Weight decay of the kernels.", "float")
    label_smoothing: float = setting(0.1, "Label smoothing.", "float")
    dropout_rate: float | None = setting(
        0.2, "Dropout before the classifier (None: the model's own).", "float"
    )
    ema_decay: float = setting(
        0.0, "Moving average of the weights, e.g. 0.9999; 0 turns it off.", "float"
    )
    randaugment: str | None = setting(
        None, "RandAugment 'num_ops,magnitude', e.g. 2,9.", "string", default_help="off"
    )
    # Devices
    mixed_precision: bool = setting(
        False,
        "float16 compute (bfloat16 on TPU), float32 weights and output probabilities; float16 "
        "uses Keras's dynamic loss scaling.",
        "boolean",
    )
    jit_compile: bool = setting(False, "XLA-compile the training step (always on JAX).", "boolean")
    steps_per_execution: int = setting(
        1,
        "Training steps per call of the compiled step: the callbacks, and the host's wait for "
        "the device, come once per N steps (for fast steps on a GPU). N must divide the "
        "epoch's steps.",
        "integer",
    )
    strategy: str = setting(
        "auto",
        "tf.distribute strategy; auto: TPU if --tpu, TF_CONFIG -> multi-worker, >1 GPU -> "
        "mirrored.",
        "enum",
        choices=STRATEGIES,
    )
    tpu: str | None = setting(
        None, "TPU name or grpc:// address ('local' on a TPU VM).", "string", default_help="none"
    )
    cpu_replicas: int | None = setting(
        None,
        "Without GPUs: split the CPU into N replicas for --strategy=mirrored.",
        "integer",
        default_help="none",
    )
    # Run
    seed: int | None = setting(
        None, "Random seed of weights, shuffling and augmentation.", "integer", default_help="none"
    )
    save_every: int | None = setting(
        None, "Also checkpoint every N steps.", "integer", default_help="at each epoch end only"
    )
    log_every: int = setting(50, "Progress line every N steps.", "integer")
    eval_every: int = setting(1, "Evaluate every N epochs; 0: only at the end.", "integer")
    cache: bool | None = setting(
        None, "Cache decoded images in memory.", "boolean", default_help="if < 1 GB"
    )
    in_memory: bool = setting(
        False,
        "Hold the decoded splits in memory as two tensors, shuffle and cut batches there and "
        "crop and flip whole batches (small data sets such as CIFAR-10; "
        "training/memory_data.py).",
        "boolean",
    )
    eval_only: bool = setting(
        False, "Only evaluate the latest checkpoint or model.keras.", "boolean"
    )
    # Not a setting: the recipe the config was made from (make_config's `recipe`).
    recipe: str | None = None

    def to_dict(self):
        return dataclasses.asdict(self)


def settings():
    """The declared settings (`dataclasses.Field`s of `TrainConfig`), in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if "kind" in f.metadata]


def defaults():
    """`{setting: default}` for every declared setting (fresh copies of mutable defaults)."""
    values = {}
    for field in settings():
        if field.default_factory is not dataclasses.MISSING:
            values[field.name] = field.default_factory()
        else:
            values[field.name] = field.default
    return values


def flag_settings():
    """The settings that have a command-line flag of the same name."""
    return [f for f in settings() if f.metadata["flag"]]


def flag_help(field):
    """The `--help` text of a setting: its help and its default."""
    meta = field.metadata
    default = meta["default_help"]
    if default is None:
        value = defaults()[field.name]
        default = str(value).lower() if isinstance(value, bool) else f"{value}"
    return f"{meta['help']} (default: {default})" if default else meta["help"]


def define_flags(flag_values):
    """Defines one absl flag per setting with a flag, all with the value `None`, so that
    `flag_values[name].present` tells a setting given explicitly from one left unset."""
    from absl import flags

    define = {
        "string": flags.DEFINE_string,
        "integer": flags.DEFINE_integer,
        "float": flags.DEFINE_float,
        "boolean": flags.DEFINE_boolean,
        "list": flags.DEFINE_list,
    }
    for field in flag_settings():
        kind = field.metadata["kind"]
        if kind == "enum":
            flags.DEFINE_enum(
                field.name,
                None,
                list(field.metadata["choices"]),
                flag_help(field),
                flag_values=flag_values,
            )
        else:
            define[kind](field.name, None, flag_help(field), flag_values=flag_values)


def explicit_settings(flag_values):
    """The settings given explicitly (command line or flag file): `{name: value}`."""
    return {
        f.name: flag_values[f.name].value for f in flag_settings() if flag_values[f.name].present
    }
