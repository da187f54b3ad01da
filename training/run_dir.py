"""The model directory of a training run: its files, one run at a time, and what it holds.

Everything a run writes goes to `config.model_dir`:

- `checkpoints/ckpt-<step>.weights.h5`, `checkpoints/ckpt-<step>.json`,
  `checkpoints/state.json`: the resumable state (see `training.checkpoint`);
- `logs/`: TensorBoard summaries (`logs/train`, `logs/validation`);
- `config.json`: the resolved settings of the run;
- `model.keras`: the final model (the moving-average weights if `ema_decay > 0`), with the
  class names as its `labels.txt` member (`ghostnet_keras.labels`);
- `labels.txt`: the class names of the data set, one a line, in index order;
- `metrics.json`: final evaluation, step count, wall time, throughput and settings;
- `.lock`, while a run trains: its process id (see `RunLock`).

Every file is written atomically through `ghostnet_keras.files`, with the permissions the
user's umask gives.
"""

import fcntl
import json
import os
import pathlib
import shutil
import socket
import sys
import tempfile
import time

from ghostnet_keras import files, labels

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
EVAL_METRICS_FILE = "eval_metrics.json"
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"

# The settings that decide the model's weights: a checkpoint resumes only the same ones.
MODEL_SETTINGS = ("model", "width", "model_kwargs")


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


def write_json(path, payload, is_chief=True):
    """The chief writes `payload` to `path` atomically; other workers write nothing."""
    if is_chief:
        files.write_json(path, payload)


def save_model(model, path, is_chief=True, class_names=None):
    """Chief: writes `path` atomically, with `class_names` (if given) as its `labels.txt`
    member (`ghostnet_keras.labels`). Others: write to a temporary directory, deleted (every
    worker must take part in saving under `tf.distribute`)."""
    if not is_chief:
        tmp_dir = tempfile.mkdtemp(prefix="ghostnet-worker-model-")
        try:
            model.save(os.path.join(tmp_dir, MODEL_FILE))
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    with files.atomic_path(path) as tmp:
        model.save(tmp)
        if class_names is not None:
            labels.save_labels(tmp, class_names)


def check_same_model(config, model_dir):
    """A model directory with checkpoints resumes only the model that wrote them: compares
    `config.json`'s model settings with `config`'s before anything is loaded."""
    model_dir = pathlib.Path(model_dir)
    checkpoints = model_dir / CHECKPOINT_DIR
    if not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        return
    try:
        saved = json.loads((model_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return  # no readable config.json: the checkpoint check itself decides
    if not isinstance(saved, dict):
        return
    for name in MODEL_SETTINGS:
        value = getattr(config, name)
        if (
            name in saved
            and saved[name] != value
            and not (name == "model_kwargs" and not value and not saved[name])
        ):
            shown = {k: saved.get(k) for k in MODEL_SETTINGS if saved.get(k) not in (None, {})}
            model = ", ".join(f"{k}={v}" for k, v in shown.items())
            raise ValueError(
                f"{model_dir} holds checkpoints of another model ({model}, from its "
                f"{CONFIG_FILE}): resume with the same --{name} or use another --model_dir. "
                f"Received: {name}={value}"
            )


def check_same_run(state, values, model_dir):
    """A checkpoint resumes only the run that wrote it: the `values` (name -> value) that its
    state records must be this run's (the trainer's global batch and epoch length, on which the
    schedule and the step count depend; a detector's settings too)."""
    for name, value in values.items():
        saved = state.get(name, value)
        if saved != value:
            raise ValueError(
                f"{model_dir} holds a run with {name} {saved}, this one has {value}: resume "
                f"with the same settings or use another --model_dir. Received: {name}={value}"
            )


def finished_metrics(model_dir, step):
    """The `metrics.json` dict of the finished run in `model_dir` whose last checkpoint is at
    `step` (and whose `model.keras` is there), or None."""
    model_dir = pathlib.Path(model_dir)
    try:
        metrics = json.loads((model_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.get("steps") != step:
        return None
    return metrics if (model_dir / MODEL_FILE).exists() else None


def latest_checkpoint(model_dir):
    """`(path, step)` named by `checkpoints/state.json`, or `(None, None)` (no checks)."""
    state_path = pathlib.Path(model_dir) / CHECKPOINT_DIR / "state.json"
    try:
        state = json.loads(state_path.read_text())
        return state_path.parent / state["checkpoint"], state["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


class RunLock:
    """One training run per model directory: `<model_dir>/.lock`, held with `flock` and
    holding the run's process id, host and command.

    A second run on the same directory is refused at once (`ValueError` naming the first run).
    The kernel releases the lock when the process ends, however it ends, so a lock file left
    by a run that is gone (killed, crashed, power cut) never blocks: it is taken over.
    """

    def __init__(self, model_dir):
        self.path = pathlib.Path(model_dir) / LOCK_FILE
        self._fd = None

    def _holder(self):
        try:
            info = json.loads(self.path.read_text())
            return (
                f"pid {info['pid']} on {info['host']}, started "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info['started']))}: "
                f"{info['command']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that is still starting"

    def acquire(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ValueError(
                    f"Another training run is using {self.path.parent} ({self._holder()}). "
                    f"Wait for it to end or stop it, or use another --model_dir. Received: "
                    f"model_dir={self.path.parent}"
                ) from None
            except OSError:
                os.close(fd)
                return self  # a file system without locks (some network mounts): no lock
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file that the previous holder unlinked meanwhile
                break
            os.close(fd)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
