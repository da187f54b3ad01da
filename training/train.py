r"""Trains a GhostNet-family model: `python -m training.train --dataset=... --model_dir=...`.

A thin command line over `training.loop.train`. Settings come, highest first, from the flags
given (on the command line or in a `--flagfile`), the `--recipe`, and the defaults
(`training/config.py`, where every setting is declared once). Examples:

    # The paper's ImageNet recipe (C-GhostNet 1.0, 400 epochs, batch 1024), all local GPUs:
    python -m training.train --recipe=ghostnet_imagenet --data_dir=~/tensorflow_datasets \
        --model_dir=runs/ghostnet_100

    # A short CIFAR-10 run from an image folder (train/<class>/*, test/<class>/*):
    python -m training.train --dataset=folder:/tmp/cifar10-jpeg --model=ghostnet_050 \
        --image_size=32 --batch_size=128 --epochs=3 --model_dir=/tmp/run

Run it again with the same command after an interruption: it resumes from the last checkpoint.
"""

import errno
import os
import sys

from absl import app, flags

from ghostnet_keras import cli as cli_lib
from ghostnet_keras import extras
from training import config as config_lib
from training import recipes

FLAGS = flags.FLAGS

flags.DEFINE_enum("recipe", None, recipes.list_recipes(), "Named paper recipe.")
flags.DEFINE_boolean(
    "verbose",
    False,
    "Also show TensorFlow's C++ log lines and the libraries' notes (hidden by default; the "
    "environment variable GHOSTNET_VERBOSE=1 or GHOSTNET_TRAIN_VERBOSE=1 does the same).",
)
config_lib.define_flags(FLAGS)  # one flag per setting of training/config.py
flags.adopt_module_key_flags(config_lib)  # --help lists them with this module's


def explicit_settings(flag_values):
    """The settings given explicitly (command line or flag file)."""
    return config_lib.explicit_settings(flag_values)


def config_from_flags(flag_values=FLAGS):
    return recipes.make_config(flag_values.recipe, **explicit_settings(flag_values))


def _error(message, hard=False):
    print(f"train: error: {message}", file=sys.stderr, flush=True)
    if hard:
        # After a failed disk write, h5py's half-closed handles can print errors and crash the
        # interpreter while it cleans up: the line above is the last word.
        sys.stdout.flush()
        os._exit(2)
    sys.exit(2)


def _parse_flags(argv):
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _error(str(error).splitlines()[0])
    except SystemExit as stop:
        # absl's --help, --helpshort, --helpfull and --helpxml print the help, then exit with
        # status 1 (its only exits while parsing; errors raise flags.Error). Help that was
        # asked for is no error: 0.
        sys.exit(0 if stop.code == 1 else stop.code)


def _interrupted(config):
    """The one line of a run stopped by Ctrl-C (SIGINT)."""
    from training import run_dir

    path, step = (None, None) if config is None else run_dir.latest_checkpoint(config.model_dir)
    if path is None:
        where = "no checkpoint was written yet, so a new run starts from the beginning"
    else:
        where = f"run the same command again to resume from {path} (step {step})"
    print(f"train: interrupted; {where}", file=sys.stderr, flush=True)
    return 130


def main(argv):
    if len(argv) > 1:
        _error(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    verbose = cli_lib.is_verbose(FLAGS.verbose)
    cli_lib.quiet(verbose)
    config = None
    try:
        config = config_from_flags(FLAGS)  # bad settings fail here, before TensorFlow loads
        if (config.cpu_replicas or 1) > 1:
            os.environ.setdefault(config_lib.ONEDNN_SWITCH, "0")
        with cli_lib.quiet_imports(verbose):
            extras.require("tensorflow", "train", "training")
            from training import loop

        loop.run(config, printer=lambda line: print(line, flush=True), verbose=verbose)
    except KeyboardInterrupt:
        sys.exit(_interrupted(config))
    except (ValueError, OSError, ImportError) as error:
        if isinstance(error, ImportError) and type(error).__name__ != "MissingExtraError":
            raise
        if os.environ.get("GHOSTNET_TRAIN_TRACEBACK"):
            raise
        disk = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
        _error(" ".join(str(error).split()) or repr(error), hard=disk)
    except Exception as error:  # TensorFlow runtime errors: one line too, no traceback
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(error, tf.errors.OpError):
            raise
        _error(cli_lib.runtime_error_line(error))


def cli():
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    cli()
