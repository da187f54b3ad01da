"""Resumable checkpoints: written atomically, checked before they are loaded.

A checkpoint is `ckpt-<step>.weights.h5` (weights, optimizer slots and step counter, moving
averages). Each one is written through `ghostnet_keras.files.atomic_path` (temporary file,
fsync, rename); then its record, `ckpt-<step>.json` (step, optimizer iterations, size and
SHA-256 of the file), and `state.json`, the commit point naming the latest checkpoint with the
same record, are written atomically the same way. A process killed at any moment leaves the
previous or the new checkpoint, never a torn one.

Before a checkpoint is loaded, its size and SHA-256 are compared with its record: a damaged
file is never loaded. If the latest checkpoint is damaged, missing or unreadable, or
`state.json` is, resuming falls back to the newest intact checkpoint and says which file was
skipped and why; if none is intact, `NoIntactCheckpointError` names the files and the way out.
"""

import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile
import time

import keras
import numpy as np

from ghostnet_keras import files

STATE_FILE = "state.json"
_CKPT = re.compile(r"ckpt-(\d+)\.weights\.h5$")
_RECORD = re.compile(r"ckpt-(\d+)\.json$")


class NoIntactCheckpointError(ValueError):
    """Checkpoints exist, but none of them can be loaded."""


def global_step(model):
    """The optimizer's step counter: the number of training steps applied so far."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def file_sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _record_name(checkpoint_name):
    return checkpoint_name.replace(".weights.h5", ".json")


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


class StepsPerCall(keras.callbacks.Callback):
    """A callback that counts training steps: Keras calls `on_train_batch_begin` with the first
    step index of a call of the compiled step and `on_train_batch_end` with its last, and a
    call runs `steps_per_execution` steps (1 by default)."""

    _call_begin = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._call_begin = batch

    def steps_in_call(self, batch):
        """The steps of the call that `on_train_batch_end(batch)` ends."""
        return batch - self._call_begin + 1


def crossed(every, before, after):
    """Whether counting from step `before` to `after` passed a multiple of `every`."""
    return after // every > before // every


class ResumableCheckpoint(StepsPerCall):
    """Saves the whole training state (weights, optimizer slots and step counter, moving
    averages) every `save_every` steps and at the end of every epoch, atomically, with a
    SHA-256 of each file recorded next to it and in `state.json`.

    The previous checkpoint is kept as well (`keep=2`), so that a damaged latest one leaves an
    older one to resume from.

    Only the chief writes into `directory`; other workers write to a temporary directory that
    is deleted right away (every worker must take part in saving under `tf.distribute`).

    Args:
        directory: where the checkpoints go (`<model_dir>/checkpoints`).
        save_every: steps between checkpoints (at the end of the call of the compiled step
            that reaches a multiple), or `None` for the end of each epoch only.
        is_chief: whether this process writes to `directory`.
        keep: how many checkpoints to keep.
        extra_state: a callable returning a JSON-able dict stored in `state.json`.
        printer: where the notes on skipped checkpoints go (one line each).
    """

    def __init__(
        self, directory, save_every=None, is_chief=True, keep=2, extra_state=None, printer=None
    ):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.save_every = save_every
        self.is_chief = is_chief
        self.keep = keep
        self.extra_state = extra_state
        self.printer = printer
        self.last_saved_step = None
        # Training steps run, restored from state.json. Not the optimizer's counter: with
        # float16 loss scaling, a step whose gradients overflow leaves that one unchanged.
        self.steps = 0

    # -- restore --------------------------------------------------------------------------
    def _read_json(self, path):
        """`(dict, None)` or `(None, reason)`."""
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return None, "missing"
        except (OSError, UnicodeDecodeError) as error:
            return None, f"unreadable ({_one_line(error)})"
        except ValueError as error:
            return None, f"not valid JSON ({_one_line(error)})"
        if not isinstance(state, dict) or not _CKPT.match(str(state.get("checkpoint", ""))):
            return None, "not a checkpoint state (no 'checkpoint' entry)"
        if not isinstance(state.get("step"), int):
            return None, "not a checkpoint state (no 'step' entry)"
        return state, None

    def candidates(self):
        """The checkpoints to try, newest first: `[(path, state)]`; the state files that could
        not be read: `[(path, reason)]`; and the checkpoints with no record to verify them."""
        found, notes, unrecorded, seen = [], [], [], set()
        state_path = self.directory / STATE_FILE
        if state_path.exists():
            state, reason = self._read_json(state_path)
            if state is None:
                notes.append((state_path, reason))
            else:
                found.append((self.directory / state["checkpoint"], state))
                seen.add(state["checkpoint"])
        if not self.directory.is_dir():
            return found, notes, unrecorded
        records = sorted(
            (int(m.group(1)), p) for p in self.directory.iterdir() if (m := _RECORD.match(p.name))
        )
        for _, record in reversed(records):
            state, reason = self._read_json(record)
            if state is None:
                notes.append((record, reason))
            elif state["checkpoint"] not in seen:
                found.append((self.directory / state["checkpoint"], state))
                seen.add(state["checkpoint"])
        # Checkpoints without a record (written before records existed, or whose record was
        # lost) cannot be verified; they are not loaded.
        for path in sorted(self.directory.glob("ckpt-*.weights.h5")):
            if path.name not in seen:
                unrecorded.append((path, "no record (ckpt-<step>.json) to verify it by"))
        found.sort(key=lambda item: item[1]["step"], reverse=True)
        return found, notes, unrecorded

    def _verify(self, path, state):
        """`None` if `path` matches its recorded size and SHA-256, else the reason."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return "missing"
        except OSError as error:
            return f"unreadable ({_one_line(error)})"
        expected = state.get("sha256")
        if not expected:  # written before checkpoints carried one: loading will tell
            self._note(f"Note: {path} has no recorded SHA-256 (an older run); not verified.")
            return None
        if state.get("size") is not None and size != state["size"]:
            return f"truncated or damaged: {size} bytes, {state['size']} recorded"
        try:
            actual = file_sha256(path)
        except OSError as error:
            return f"unreadable ({_one_line(error)})"
        if actual != expected:
            return "damaged: its SHA-256 differs from the one recorded when it was written"
        return None

    def _note(self, message):
        if self.printer is not None:
            self.printer(message)

    def _report(self, skipped, chosen):
        for path, reason in skipped:
            self._note(f"Skipped {path}: {reason}; resuming from {chosen.name} instead.")

    def _fail(self, skipped):
        listed = "; ".join(f"{path.name}: {reason}" for path, reason in skipped)
        raise NoIntactCheckpointError(
            f"No intact checkpoint to resume from in {self.directory} ({listed}). To start "
            f"over, delete or move away {self.directory} (the model directory's other files "
            f"can stay). Received: model_dir={self.directory.parent}"
        )

    def restore(self, model):
        """Loads the newest intact checkpoint into `model` (compiled, with its optimizer);
        returns its state dict (with the restored `step`) or `None` if there is none."""
        found, notes, unrecorded = self.candidates()
        skipped = list(notes)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for path, state in found:
            reason = self._verify(path, state)
            if reason is None:
                try:
                    model.load_weights(path)
                except Exception as error:  # h5py/Keras errors of many types
                    reason = f"unreadable ({_one_line(error)[:200]})"
            if reason is None:
                iterations = global_step(model)
                if iterations != state.get("iterations", state["step"]):
                    reason = (
                        f"holds optimizer step {iterations}, but its record says "
                        f"{state.get('iterations')}"
                    )
            if reason is None:
                self._report(skipped, path)
                self.steps = self.last_saved_step = state["step"]
                return state
            skipped.append((path, reason))
        if not skipped and not unrecorded:
            return None
        self._fail(skipped + unrecorded)

    # -- save ------------------------------------------------------------------------------
    def save(self):
        step = self.steps
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
        self._check_space(name)
        with files.atomic_path(self.directory / name) as tmp:
            self.model.save_weights(tmp)
            size, sha256 = tmp.stat().st_size, file_sha256(tmp)
        self._last_size = size
        state = {
            "step": step,
            "iterations": global_step(self.model),
            "checkpoint": name,
            "size": size,
            "sha256": sha256,
            "time": time.time(),
        }
        if self.extra_state is not None:
            state.update(self.extra_state())
        files.write_json(self.directory / _record_name(name), state)
        files.write_json(self.directory / STATE_FILE, state)  # the commit point
        self.last_saved_step = step
        self._prune(step)

    def _check_space(self, name):
        """Raises `OSError(ENOSPC)` before writing if the disk cannot hold the checkpoint.

        h5py cannot recover from a write that fails half-way: its open handles print errors
        while they are freed and may crash the interpreter at exit. So a checkpoint is written
        only if the disk has room for it: the size of the last one, or, for the first, the
        bytes of all the variables plus 5% and 1 MB of HDF5 overhead.
        """
        needed = getattr(self, "_last_size", None)
        if needed is None:
            variables = list(self.model.weights) + list(self.model.optimizer.variables)
            raw = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
            needed = int(raw * 1.05) + (1 << 20)
        try:
            stats = os.statvfs(self.directory)
        except (OSError, AttributeError):
            return
        free = stats.f_bavail * stats.f_frsize
        if free < needed:
            latest = self.last_saved_step
            last = f"ckpt-{latest}.weights.h5" if latest else "none yet"
            raise OSError(
                errno.ENOSPC,
                f"No space left on device: the checkpoint {name} needs about "
                f"{needed / 2**20:.1f} MB and {self.directory} has {free / 2**20:.1f} MB free. "
                f"The last good checkpoint ({last}) is kept: free some space and run the same "
                "command again to resume",
            )

    def _prune(self, current):
        steps = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _CKPT.match(p.name))
        )
        for step in [s for s in steps if s != current][: max(0, len(steps) - self.keep)]:
            (self.directory / f"ckpt-{step}.weights.h5").unlink(missing_ok=True)
            (self.directory / f"ckpt-{step}.json").unlink(missing_ok=True)
        # Temporary files of an earlier, killed run (one run at a time: see run_dir.RunLock).
        for stale in self.directory.glob(".tmp-*"):
            stale.unlink(missing_ok=True)

    def on_train_batch_end(self, batch, logs=None):
        before, self.steps = self.steps, self.steps + self.steps_in_call(batch)
        if self.save_every and crossed(self.save_every, before, self.steps):
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()
