r"""Trains a GhostNet-family model: `python -m training.train --dataset=... --model_dir=...`.

A thin command line over `training.loop.train`. Settings come, highest first, from the flags
given (on the command line or in a `--flagfile`), the `--recipe`, and the defaults
(`training/recipes.py`). Examples:

    # The paper's ImageNet recipe (C-GhostNet 1.0, 400 epochs, batch 1024), all local GPUs:
    python -m training.train --recipe=ghostnet_imagenet --data_dir=~/tensorflow_datasets \
        --model_dir=runs/ghostnet_100

    # A short CIFAR-10 run from an image folder (train/<class>/*, test/<class>/*):
    python -m training.train --dataset=folder:/tmp/cifar10-jpeg --model=ghostnet_050 \
        --image_size=32 --batch_size=128 --epochs=3 --model_dir=/tmp/run

Run it again with the same command after an interruption: it resumes from the last checkpoint.
"""

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_enum("recipe", None, ["ghostnet_imagenet", "cifar10"], "Named paper recipe.")
flags.DEFINE_string("model", None, "Registry model name, e.g. ghostnet_100 (default).")
flags.DEFINE_float("width", None, "Width multiplier for ghostnet_*/g_ghostnet_* models.")
flags.DEFINE_string(
    "model_kwargs", None, "More builder arguments: key=value,... (e.g. include_preprocessing=True)."
)
flags.DEFINE_string("dataset", None, "A TFDS name (imagenet2012, cifar10, ...) or folder:PATH.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (TFDS's default if unset).")
flags.DEFINE_string("model_dir", None, "Where checkpoints, logs, model and metrics go.")
flags.DEFINE_integer("image_size", None, "Training and evaluation resolution (default 224).")
flags.DEFINE_float(
    "crop_fraction", None, "Evaluation centre crop (default 0.875; 1.0 at <= 64 px)."
)
flags.DEFINE_integer("batch_size", None, "GLOBAL batch size over all replicas (default 256).")
flags.DEFINE_integer("epochs", None, "Training epochs (default 100).")
flags.DEFINE_integer(
    "steps_per_epoch", None, "Cap on the steps per epoch (default: one pass over the data)."
)
flags.DEFINE_enum("optimizer", None, ["sgd", "rmsprop", "adamw"], "Optimizer (default sgd).")
flags.DEFINE_float("momentum", None, "SGD/RMSprop momentum (default 0.9).")
flags.DEFINE_boolean("nesterov", None, "Nesterov momentum for SGD (default true).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: 0.4 * batch_size / 1024).")
flags.DEFINE_enum(
    "lr_schedule", None, ["cosine", "step", "constant"], "Learning-rate schedule (default cosine)."
)
flags.DEFINE_list("lr_decay_epochs", None, "Epochs where --lr_schedule=step decays the rate.")
flags.DEFINE_float("lr_decay_factor", None, "Factor of each step decay (default 0.1).")
flags.DEFINE_float("warmup_epochs", None, "Linear warm-up epochs (default 5).")
flags.DEFINE_float("weight_decay", None, "Weight decay of the kernels (default 4e-5).")
flags.DEFINE_float("label_smoothing", None, "Label smoothing (default 0.1).")
flags.DEFINE_float("dropout_rate", None, "Dropout before the classifier (default 0.2).")
flags.DEFINE_float(
    "ema_decay", None, "Moving average of the weights, e.g. 0.9999; 0 turns it off (default)."
)
flags.DEFINE_string("randaugment", None, "RandAugment 'num_ops,magnitude', e.g. 2,9 (default off).")
flags.DEFINE_boolean("mixed_precision", None, "float16 compute (bfloat16 on TPU).")
flags.DEFINE_boolean("jit_compile", None, "XLA-compile the training step.")
flags.DEFINE_enum(
    "strategy",
    None,
    ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy; auto: TPU if --tpu, TF_CONFIG -> multi-worker, >1 GPU -> mirrored.",
)
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address ('local' on a TPU VM).")
flags.DEFINE_integer(
    "cpu_replicas", None, "Without GPUs: split the CPU into N replicas for --strategy=mirrored."
)
flags.DEFINE_integer("seed", None, "Random seed of weights, shuffling and augmentation.")
flags.DEFINE_integer(
    "save_every", None, "Also checkpoint every N steps (default: at each epoch end only)."
)
flags.DEFINE_integer("log_every", None, "Progress line every N steps (default 50).")
flags.DEFINE_integer("eval_every", None, "Evaluate every N epochs; 0: only at the end (default 1).")
flags.DEFINE_boolean("cache", None, "Cache decoded images in memory (default: if < 1 GB).")
flags.DEFINE_boolean("eval_only", None, "Only evaluate the latest checkpoint or model.keras.")

# The settings of `training.recipes.DEFAULTS` that have a flag of the same name.
SETTING_FLAGS = (
    "model",
    "width",
    "model_kwargs",
    "dataset",
    "data_dir",
    "model_dir",
    "image_size",
    "crop_fraction",
    "batch_size",
    "epochs",
    "steps_per_epoch",
    "optimizer",
    "momentum",
    "nesterov",
    "learning_rate",
    "lr_schedule",
    "lr_decay_epochs",
    "lr_decay_factor",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "dropout_rate",
    "ema_decay",
    "randaugment",
    "mixed_precision",
    "jit_compile",
    "strategy",
    "tpu",
    "cpu_replicas",
    "seed",
    "save_every",
    "log_every",
    "eval_every",
    "cache",
    "eval_only",
)


def explicit_settings(flag_values):
    """The settings given explicitly (command line or flag file), converted for the config."""
    from training import recipes

    settings = {}
    for name in SETTING_FLAGS:
        if flag_values[name].present:
            settings[name] = flag_values[name].value
    if "model_kwargs" in settings:
        settings["model_kwargs"] = recipes.parse_model_kwargs(settings["model_kwargs"])
    if "lr_decay_epochs" in settings:
        try:
            settings["lr_decay_epochs"] = tuple(int(e) for e in settings["lr_decay_epochs"])
        except ValueError:
            raise ValueError(
                "`lr_decay_epochs` must be integers separated by commas. "
                f"Received: lr_decay_epochs={','.join(settings['lr_decay_epochs'])}"
            ) from None
    return settings


def config_from_flags(flag_values=FLAGS):
    from training import recipes

    return recipes.make_config(flag_values.recipe, **explicit_settings(flag_values))


def _error(message):
    print(f"train: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _parse_flags(argv):
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _error(str(error).splitlines()[0])


def main(argv):
    if len(argv) > 1:
        _error(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    try:
        config = config_from_flags(FLAGS)  # bad settings fail here, before TensorFlow loads
        from training import loop

        loop.run(config, printer=lambda line: print(line, flush=True))
    except (ValueError, OSError) as error:
        if os.environ.get("GHOSTNET_TRAIN_TRACEBACK"):
            raise
        _error(" ".join(str(error).split()) or repr(error))
    except Exception as error:  # TensorFlow runtime errors: one line too, no traceback
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(error, tf.errors.OpError):
            raise
        _error(f"{type(error).__name__}: {' '.join(error.message.split())}")


def cli():
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    cli()
