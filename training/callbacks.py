"""The progress log of a training run and its Ctrl-C (the checkpoints are in
`training.checkpoint`)."""

import signal
import threading
import time

import keras

from training.checkpoint import StepsPerCall, crossed, global_step


class ThroughputLogger(StepsPerCall):
    """Prints a line every `every` steps (at the end of the call of the compiled step that
    reaches a multiple): step, epoch, loss, accuracy, learning rate and training images per
    second (global batch x steps / wall time, validation excluded); and one line per epoch
    with the validation metrics. `train_seconds`/`train_steps` sum up the whole run;
    `first_call_seconds` is the run's first call of the compiled step (`first_call_steps`
    steps, with tracing and compilation)."""

    def __init__(
        self, every, global_batch_size, total_steps, steps_per_epoch, printer=print, step_fn=None
    ):
        super().__init__()
        self.step_fn = step_fn or (lambda: global_step(self.model))
        self.every = every
        self.global_batch_size = global_batch_size
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.printer = printer
        self.train_seconds = 0.0
        self.train_steps = 0
        self.first_call_seconds = None
        self.first_call_steps = None
        self._last = None
        self._window_start = None
        self._window_steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._last = time.perf_counter()
        self._window_start = self._last
        self._window_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        steps = self.steps_in_call(batch)
        if self.first_call_seconds is None:
            self.first_call_seconds, self.first_call_steps = now - self._last, steps
        self.train_seconds += now - self._last
        self._last = now
        self.train_steps += steps
        self._window_steps += steps
        step = self.step_fn()
        if crossed(self.every, step - steps, step) or step == self.total_steps:
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


class SaveOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C loses nothing: the first SIGINT lets the running training step end, calls `save`
    (a checkpoint of that step, written atomically) and stops the run with
    `KeyboardInterrupt`; a second SIGINT stops at once. During validation the stop waits for
    the end of the epoch, whose checkpoint is written anyway.

    The handler is installed while the instance is entered as a context manager (around
    `fit`), from the main thread only, and only where SIGINT has Python's default handler: a
    job started in the background ignores SIGINT and goes on ignoring it. Goes last in the
    callback list, after the checkpoint's step count and the progress line of the step.
    """

    def __init__(self, save):
        super().__init__()
        self.save = save
        self.requested = False
        self._previous = None

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _stop_if_requested(self):
        if self.requested:
            self.save()
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        self._stop_if_requested()

    def on_epoch_end(self, epoch, logs=None):
        self._stop_if_requested()
