"""Callbacks of a training run: resumable atomic checkpoints and a throughput log."""

import json
import os
import pathlib
import re
import shutil
import tempfile
import time

import keras

STATE_FILE = "state.json"
_CKPT = re.compile(r"ckpt-(\d+)\.weights\.h5$")


def global_step(model):
    """The optimizer's step counter: the number of training steps applied so far."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path, payload):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state (weights, optimizer slots and step counter, moving
    averages) every `save_every` steps and at the end of every epoch, atomically.

    A checkpoint is written to a temporary file, fsynced and renamed to
    `ckpt-<step>.weights.h5`; then `state.json` (the commit point) is replaced the same way to
    name it. A process killed at any moment leaves either the previous or the new checkpoint,
    never a torn one. The previous checkpoint is kept as well (`keep=2`).

    Only the chief writes into `directory`; other workers write to a temporary directory that
    is deleted right away (every worker must take part in saving under `tf.distribute`).

    Args:
        directory: where the checkpoints go (`<model_dir>/checkpoints`).
        save_every: steps between checkpoints, or `None` for the end of each epoch only.
        is_chief: whether this process writes to `directory`.
        keep: how many checkpoints to keep.
        extra_state: a callable returning a JSON-able dict stored in `state.json`.
    """

    def __init__(self, directory, save_every=None, is_chief=True, keep=2, extra_state=None):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.save_every = save_every
        self.is_chief = is_chief
        self.keep = keep
        self.extra_state = extra_state
        self.last_saved_step = None

    # -- restore --------------------------------------------------------------------------
    def latest(self):
        """`(path, state)` of the latest committed checkpoint, or `(None, None)`."""
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            return None, None
        with open(state_path) as f:
            state = json.load(f)
        path = self.directory / state["checkpoint"]
        if not path.exists():
            raise ValueError(
                f"{state_path} names {path.name}, which is missing: the checkpoint directory "
                f"was changed by hand; delete it to start over. Received: model_dir="
                f"{self.directory.parent}"
            )
        return path, state

    def restore(self, model):
        """Loads the latest checkpoint into `model` (compiled, with its optimizer); returns the
        state dict (with the restored `step`) or `None` if there is no checkpoint."""
        path, state = self.latest()
        if path is None:
            return None
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
        step = global_step(model)
        if step != state["step"]:
            raise ValueError(
                f"The checkpoint {path} holds step {step}, but {STATE_FILE} says {state['step']}. "
                f"Received: model_dir={self.directory.parent}"
            )
        self.last_saved_step = step
        return state

    # -- save ------------------------------------------------------------------------------
    def save(self):
        step = global_step(self.model)
        if step == self.last_saved_step:
            return
        if not self.is_chief:
            tmp_dir = tempfile.mkdtemp(prefix="ghostnet-worker-ckpt-")
            try:
                self.model.save_weights(os.path.join(tmp_dir, "ckpt.weights.h5"))
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            self.last_saved_step = step
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{step}.weights.h5"
        tmp = self.directory / f".tmp-{os.getpid()}-{name}"
        self.model.save_weights(tmp, overwrite=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / name)
        state = {"step": step, "checkpoint": name, "time": time.time()}
        if self.extra_state is not None:
            state.update(self.extra_state())
        _write_json_atomic(self.directory / STATE_FILE, state)
        self.last_saved_step = step
        self._prune(step)

    def _prune(self, current):
        steps = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _CKPT.match(p.name))
        )
        for step in [s for s in steps if s != current][: max(0, len(steps) - self.keep)]:
            (self.directory / f"ckpt-{step}.weights.h5").unlink(missing_ok=True)
        for stale in self.directory.glob(".tmp-*"):
            if not stale.name.startswith(f".tmp-{os.getpid()}-"):
                stale.unlink(missing_ok=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_every and global_step(self.model) % self.save_every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()


class ThroughputLogger(keras.callbacks.Callback):
    """Prints a line every `every` steps: step, epoch, loss, accuracy, learning rate and training
    images per second (global batch x steps / wall time, validation excluded); and one line per
    epoch with the validation metrics. `train_seconds`/`train_steps` sum up the whole run."""

    def __init__(self, every, global_batch_size, total_steps, steps_per_epoch, printer=print):
        super().__init__()
        self.every = every
        self.global_batch_size = global_batch_size
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.printer = printer
        self.train_seconds = 0.0
        self.train_steps = 0
        self._last = None
        self._window_start = None
        self._window_steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._last = time.perf_counter()
        self._window_start = self._last
        self._window_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.train_seconds += now - self._last
        self._last = now
        self.train_steps += 1
        self._window_steps += 1
        step = global_step(self.model)
        if step % self.every == 0 or step == self.total_steps:
            seconds = max(now - self._window_start, 1e-9)
            rate = self._window_steps * self.global_batch_size / seconds
            epoch = (step - 1) // self.steps_per_epoch + 1
            lr = self.model.optimizer.learning_rate
            lr = float(keras.ops.convert_to_numpy(lr))
            logs = logs or {}
            parts = [
                f"step {step}/{self.total_steps}",
                f"epoch {epoch}",
                *(f"{k} {float(v):.4f}" for k, v in logs.items() if k in ("loss", "accuracy")),
                f"lr {lr:.5g}",
                f"{rate:.1f} images/s",
            ]
            self.printer(", ".join(parts))
            self._window_start = now
            self._window_steps = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1} done"]
        parts += [f"{k} {float(v):.4f}" for k, v in sorted(logs.items()) if k != "learning_rate"]
        self.printer(", ".join(parts))
