"""Training configuration: the defaults, the named recipes of the paper's experiments, and
how explicit settings override them.

Precedence, highest first: a value given explicitly (command line or flag file), the value of
the chosen recipe, the value in `DEFAULTS`. Every recipe lives in `RECIPES`, one table.

Sources (paper: "GhostNets on Heterogeneous Devices via Cheap Operations", IJCV 2022):

- `ghostnet_imagenet`: section 5.1 ("trained using the training setup as in (Howard et al.,
  2019)", i.e. MobileNetV3) and section 5.2.4 ("we follow most of the training settings used in
  (Zhang et al., 2018), except that the initial learning rate is set to 0.4 when batch size is
  1,024 on 8 GPUs"); augmentation of section 5.1: random crop, flip, colour jitter. The paper
  text gives neither the schedule nor the epochs. The authors stated them in their issue tracker:
  5 warm-up epochs with cosine decay (iamhankai/ghostnet.pytorch#3) and 400 epochs
  (iamhankai/ghostnet.pytorch#18). Weight decay 4e-5, label smoothing 0.1 and dropout 0.2 are
  the ShuffleNet (Zhang et al., 2018) settings the authors point to in #3; the exponential moving
  average of the weights (decay 0.9999) is MobileNetV3's (Howard et al., 2019, section 6.1.1).
- `cifar10`: section 5.2.2 ("Our training strategy closely follows the settings in (He et al.,
  2016), including momentum, learning rate, etc."), confirmed by the authors in
  iamhankai/ghostnet.pytorch#13; section 5 ("Implementation Details", for the G-Ghost CIFAR
  experiments of section 5.3.1) says the same in other words: "the training settings basically
  follow the common practice". He et al. 2016 ("Deep Residual Learning for Image
  Recognition", CVPR 2016), section 4.2: SGD with momentum 0.9, weight decay 1e-4, batch 128,
  learning rate 0.1 divided by 10 at 32k and 48k iterations, stop at 64k iterations (epochs
  82, 123 and 164 at 391 steps per epoch), 4-pixel padding + random 32x32 crop + horizontal
  flip, no dropout. The decays are kept as fractions of the run (32k / 64k = 0.5, 48k / 64k =
  0.75: `lr_decay_fractions`), so that the schedule scales with `--epochs`: the recipe's 164
  epochs are the full schedule, `--epochs=20` the same shape in 20 epochs.
- `finetune`: transfer learning on your own image folder, on a CPU, in the two phases of the
  Keras transfer-learning guide (keras.io/guides/transfer_learning) and MediaPipe Model Maker:
  the published ImageNet weights, a new head trained alone for 3 epochs (backbone frozen,
  BatchNorm in inference mode), then the whole network (BatchNorm still frozen) at a tenth of
  the rate; AdamW at 1e-3 for batch 32 (Adam at 1e-3 is Keras's default and Model Maker's
  order of magnitude for a new head), cosine decay, 10 epochs: a few hundred images per class
  train in minutes per epoch on a laptop CPU at 224x224.
"""

import ast
import os

from training import config as config_lib
from training.config import OPTIMIZERS, SCHEDULES, STRATEGIES, TrainConfig  # noqa: F401

# Every setting with its default: derived from the one declaration, `training.config`.
DEFAULTS = config_lib.defaults()

RECIPES = {
    "ghostnet_imagenet": {
        "model": "ghostnet_100",
        "dataset": "imagenet2012",
        "image_size": 224,
        "batch_size": 1024,
        "epochs": 400,
        "optimizer": "sgd",
        "momentum": 0.9,
        "nesterov": True,
        "base_learning_rate": 0.4,
        "base_batch_size": 1024,
        "lr_schedule": "cosine",
        "warmup_epochs": 5.0,
        "weight_decay": 4e-5,
        "label_smoothing": 0.1,
        "dropout_rate": 0.2,
        "ema_decay": 0.9999,
        "randaugment": None,
    },
    "cifar10": {
        "model": "ghost_resnet56",
        "dataset": "cifar10",
        "image_size": 32,
        "crop_fraction": 1.0,
        "batch_size": 128,
        "epochs": 164,
        "optimizer": "sgd",
        "momentum": 0.9,
        "nesterov": False,
        "base_learning_rate": 0.1,
        "base_batch_size": 128,
        "lr_schedule": "step",
        "lr_decay_fractions": (0.5, 0.75),  # 32k and 48k of He et al.'s 64k iterations
        "lr_decay_factor": 0.1,
        "warmup_epochs": 0.0,
        "weight_decay": 1e-4,
        "label_smoothing": 0.0,
        "dropout_rate": None,
        "ema_decay": 0.0,
        "randaugment": None,
    },
    "finetune": {
        "model": "ghostnet_100",
        "weights": "imagenet",
        "image_size": 224,
        "batch_size": 32,
        "epochs": 10,
        "head_epochs": 3,
        "optimizer": "adamw",
        "base_learning_rate": 1e-3,
        "base_batch_size": 32,
        "lr_schedule": "cosine",
        "warmup_epochs": 0.0,
        "weight_decay": 1e-4,
        "label_smoothing": 0.1,
        "dropout_rate": 0.2,
        "ema_decay": 0.0,
        "randaugment": None,
    },
}


def scaled_learning_rate(batch_size, base_learning_rate=0.4, base_batch_size=1024):
    """The linear scaling rule: `base_learning_rate * batch_size / base_batch_size`.

    The paper uses 0.4 at a global batch of 1,024 (section 5.2.4), so a batch of 256 gets 0.1.
    """
    return base_learning_rate * batch_size / base_batch_size


def parse_model_kwargs(text):
    """`"key=value,key=value"` -> dict; values are Python literals where they parse as one
    (`width=0.75`, `include_preprocessing=False`), strings otherwise."""
    if isinstance(text, dict):
        return dict(text)
    kwargs = {}
    for item in [part.strip() for part in (text or "").split(",") if part.strip()]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(
                f"`model_kwargs` must be key=value pairs separated by commas. "
                f"Received: model_kwargs={text!r}"
            )
        try:
            kwargs[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = value.strip()
    return kwargs


def default_warmup_epochs(epochs, lr_schedule="cosine"):
    """The warm-up when none is given: `WARMUP_EPOCHS` (5, the paper's), or a tenth of a shorter
    run (`--epochs=2` warms up for 0.2 epochs), and none for the step schedule, which has no
    warm-up. The `ghostnet_imagenet` recipe sets its 5 of 400 epochs explicitly."""
    if lr_schedule == "step":
        return 0.0
    try:
        return float(min(config_lib.WARMUP_EPOCHS, epochs * config_lib.WARMUP_FRACTION))
    except TypeError:
        return config_lib.WARMUP_EPOCHS  # a bad `epochs` fails validation, naming itself


def parse_numbers(value, name, convert=int):
    """`"82,123"`, `["82", "123"]` or `(82, 123)` -> `(82, 123)` (each through `convert`);
    ValueError naming the setting `name`."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    try:
        return tuple(convert(e) for e in value or ())
    except (TypeError, ValueError):
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        kind = "integers" if convert is int else "numbers"
        raise ValueError(
            f"`{name}` must be {kind} separated by commas. Received: {name}={shown}"
        ) from None


def _whole(number):
    """`82.0` -> `82`; other numbers as they are."""
    number = float(number)
    return int(number) if number.is_integer() else number


def parse_decay_epochs(value):
    """`"82,123"`, `["82", "123"]` or `(82, 123)` -> `(82, 123)` (fractional epochs allowed:
    `"1.5"` -> `(1.5,)`); ValueError naming the setting."""
    return parse_numbers(value, "lr_decay_epochs", _whole)


def decay_epochs(values):
    """The epochs of the step decays: `lr_decay_epochs` if given, else `lr_decay_fractions` of
    `epochs` (0.5 and 0.75 of the `cifar10` recipe's 164 epochs: 82 and 123)."""
    epochs = parse_decay_epochs(values["lr_decay_epochs"])
    fractions = parse_numbers(values["lr_decay_fractions"], "lr_decay_fractions", float)
    if not epochs and isinstance(values["epochs"], int):
        epochs = tuple(_whole(f * values["epochs"]) for f in fractions)
    return epochs, fractions


def list_recipes():
    return sorted(RECIPES)


def make_config(recipe=None, **overrides):
    """Resolves every setting: explicit `overrides` > `RECIPES[recipe]` > `DEFAULTS`.

    Pass only the values the user set explicitly (unset flags must not be in `overrides`).
    `learning_rate`, if not set, is scaled linearly from the recipe's base learning rate.
    Raises `ValueError` for an unknown recipe or setting and for values out of range.
    """
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(
            f"Unknown recipe. Available: {', '.join(list_recipes())}. Received: recipe={recipe!r}"
        )
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown training setting {unknown[0]!r}. Received: {unknown[0]}=...")
    values = config_lib.defaults()
    if recipe is not None:
        values.update(RECIPES[recipe])
    values.update(overrides)
    if values["learning_rate"] is None:
        values["learning_rate"] = scaled_learning_rate(
            values["batch_size"], values["base_learning_rate"], values["base_batch_size"]
        )
    if values["finetune_learning_rate"] is None:
        values["finetune_learning_rate"] = values["learning_rate"] * config_lib.FINETUNE_FACTOR
    if values["warmup_epochs"] is None:
        values["warmup_epochs"] = default_warmup_epochs(values["epochs"], values["lr_schedule"])
    values["lr_decay_epochs"], values["lr_decay_fractions"] = decay_epochs(values)
    values["model_kwargs"] = parse_model_kwargs(values["model_kwargs"])
    for name in ("model_dir", "data_dir", "weights"):
        if isinstance(values[name], str) and not values[name].startswith("gs://"):
            values[name] = os.path.expanduser(values[name])
    config = TrainConfig(recipe=recipe, **values)
    validate(config)
    return config


def _check(condition, name, value, requirement):
    if not condition:
        raise ValueError(f"`{name}` must be {requirement}. Received: {name}={value!r}")


def validate(config):
    """Raises `ValueError` naming the first setting out of range."""
    c = config
    _check(
        isinstance(c.image_size, int) and c.image_size >= 32, "image_size", c.image_size, ">= 32"
    )
    _check(
        c.crop_fraction is None or 0 < c.crop_fraction <= 1,
        "crop_fraction",
        c.crop_fraction,
        "in (0, 1]",
    )
    _check(c.batch_size >= 1, "batch_size", c.batch_size, ">= 1")
    _check(c.epochs >= 1, "epochs", c.epochs, ">= 1")
    _check(
        c.steps_per_epoch is None or c.steps_per_epoch >= 1,
        "steps_per_epoch",
        c.steps_per_epoch,
        ">= 1",
    )
    for field in config_lib.settings():
        choices = field.metadata["choices"]
        value = getattr(c, field.name)
        if choices:
            _check(value in choices, field.name, value, f"one of {', '.join(choices)}")
    _check(c.learning_rate > 0, "learning_rate", c.learning_rate, "> 0")
    _check(0 <= c.momentum < 1, "momentum", c.momentum, "in [0, 1)")
    _check(
        c.finetune_learning_rate > 0,
        "finetune_learning_rate",
        c.finetune_learning_rate,
        "> 0",
    )
    _check(0 <= c.head_epochs <= c.epochs, "head_epochs", c.head_epochs, f"in [0, {c.epochs}]")
    _check(
        c.head_epochs == 0 or bool(c.weights),
        "head_epochs",
        c.head_epochs,
        "0 without --weights (it trains a new head on pretrained weights)",
    )
    _check(c.warmup_epochs >= 0, "warmup_epochs", c.warmup_epochs, ">= 0")
    _check(
        c.warmup_epochs < c.epochs or c.warmup_epochs == 0,
        "warmup_epochs",
        c.warmup_epochs,
        f"less than epochs ({c.epochs})",
    )
    _check(c.weight_decay >= 0, "weight_decay", c.weight_decay, ">= 0")
    _check(0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "in [0, 1)")
    _check(
        c.dropout_rate is None or 0 <= c.dropout_rate < 1,
        "dropout_rate",
        c.dropout_rate,
        "in [0, 1)",
    )
    _check(0 <= c.ema_decay < 1, "ema_decay", c.ema_decay, "in [0, 1) (0 turns it off)")
    _check(c.width is None or c.width > 0, "width", c.width, "> 0")
    _check(
        c.strategy != "tpu" or bool(c.tpu),
        "tpu",
        c.tpu,
        "the TPU name or address with --strategy=tpu",
    )
    _check(c.cpu_replicas is None or c.cpu_replicas >= 1, "cpu_replicas", c.cpu_replicas, ">= 1")
    _check(c.save_every is None or c.save_every >= 1, "save_every", c.save_every, ">= 1")
    _check(c.log_every >= 1, "log_every", c.log_every, ">= 1")
    _check(c.steps_per_execution >= 1, "steps_per_execution", c.steps_per_execution, ">= 1")
    _check(c.eval_every >= 0, "eval_every", c.eval_every, ">= 0")
    _check(
        c.lr_schedule != "step" or len(c.lr_decay_epochs) > 0,
        "lr_decay_epochs",
        c.lr_decay_epochs,
        "at least one epoch with --lr_schedule=step (or --lr_decay_fractions)",
    )
    _check(
        list(c.lr_decay_fractions) == sorted(set(c.lr_decay_fractions))
        and all(0 < f < 1 for f in c.lr_decay_fractions),
        "lr_decay_fractions",
        c.lr_decay_fractions,
        "increasing, each in (0, 1)",
    )
    _check(
        list(c.lr_decay_epochs) == sorted(set(c.lr_decay_epochs)),
        "lr_decay_epochs",
        c.lr_decay_epochs,
        "increasing",
    )
    _check(0 < c.lr_decay_factor <= 1, "lr_decay_factor", c.lr_decay_factor, "in (0, 1]")
    _check(bool(c.dataset), "dataset", c.dataset, "set (a TFDS name or folder:PATH)")
    _check(bool(c.model_dir), "model_dir", c.model_dir, "set")
