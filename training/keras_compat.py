"""Workarounds for Keras problems that training runs into, each in one place.

Each workaround names the upstream issue, the Keras versions it was seen with, and a guard:
it applies only on a Keras version from `first_seen` on (and before `fixed_in`, once upstream
releases a fix: set it then, and the workaround turns itself off), and only when the Keras
internals it touches exist. All three concern `tf.distribute` and the TensorFlow backend;
single-device training needs none of them (each returns early there).

- `average_multi_worker_logs`: keras-team/keras#20585 (open; the same error as
  tensorflow/tensorflow#72388). Under `MultiWorkerMirroredStrategy`, `fit` averages the
  per-step logs with `strategy.reduce("MEAN", value, axis=0)`; the loss and metrics are
  scalars, so it fails with "Invalid reduction dimension 0 for input with 0 dimensions".
- `build_metrics_from_shapes`: keras-team/keras#20585 (open). Before its first step, `fit`
  takes a data batch and all-reduces it across replicas (`strategy.reduce`) only to learn
  example shapes for building the loss and metric state; under `MultiWorkerMirroredStrategy`
  that fails with "Attempt to convert a value (PerReplica...)".
- `synchronized_moving_statistics`: related to keras-team/keras#20601 (open, variable
  aggregation under `tf.distribute` in Keras 3). Keras 3 creates the batch-norm moving mean
  and variance with `aggregation="none"`, so under a multi-replica strategy each replica and
  each worker keeps its own statistics: workers end with different models. Creating them with
  `tf.VariableAggregation.MEAN` averages them at each update.

Seen with Keras 3.10 to 3.15.1 (the last version checked, `LAST_CHECKED`).

One more piece relies on how Keras's `fit` works rather than on a bug: `no_ema_finalize` keeps
`fit` from copying the moving averages into the model when it ends (Keras calls
`optimizer.finalize_variable_values` at the end of every `fit`); resuming mid-epoch calls
`fit` twice, and the averages are copied once, after training.
"""

import contextlib
import re

import keras

LAST_CHECKED = (3, 15, 1)


def keras_version(version=None):
    """`"3.15.1"` -> `(3, 15, 1)` (suffixes such as `.dev2025` ignored)."""
    parts = re.findall(r"\d+", version or keras.version())[:3]
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


class Workaround:
    """A named workaround: the upstream issue and the versions it applies to."""

    def __init__(self, name, issue, first_seen, fixed_in=None):
        self.name = name
        self.issue = issue
        self.first_seen = first_seen
        self.fixed_in = fixed_in

    def applies(self, version=None):
        """Whether this Keras version (default: the installed one) needs the workaround."""
        version = keras_version(version)
        return version >= self.first_seen and (self.fixed_in is None or version < self.fixed_in)

    def __repr__(self):
        return f"Workaround({self.name}, {self.issue})"


MULTI_WORKER_LOGS = Workaround(
    "average_multi_worker_logs", "keras-team/keras#20585", first_seen=(3, 0, 0)
)
METRICS_FROM_SHAPES = Workaround(
    "build_metrics_from_shapes", "keras-team/keras#20585", first_seen=(3, 0, 0)
)
MOVING_STATISTICS = Workaround(
    "synchronized_moving_statistics", "keras-team/keras#20601", first_seen=(3, 0, 0)
)
WORKAROUNDS = (MULTI_WORKER_LOGS, METRICS_FROM_SHAPES, MOVING_STATISTICS)


def average_multi_worker_logs():
    """Patches Keras's TensorFlow trainer to average the scalar logs of several workers over
    the replicas (`axis=None`) instead of along an axis they do not have. Idempotent."""
    if not MULTI_WORKER_LOGS.applies():
        return False
    try:
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:
        return False
    original = getattr(tf_trainer, "reduce_per_replica", None)
    is_multi_worker = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    if original is None or is_multi_worker is None:
        return False
    if getattr(original, "_ghostnet_patched", False):
        return True

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._ghostnet_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica
    return True


def build_metrics_from_shapes(model, image_size):
    """Builds the compiled loss and metric state of `model` from symbolic shapes (inputs
    `(None, image_size, image_size, 3)`, targets like the model's output), once, and stops
    `fit` from building it again from a data batch."""
    if not METRICS_FROM_SHAPES.applies():
        return False
    if not hasattr(model, "_symbolic_build") or not hasattr(model, "_maybe_symbolic_build"):
        return False
    x = keras.KerasTensor((None, image_size, image_size, 3), "float32")
    y = keras.KerasTensor(model.outputs[0].shape, "float32")
    model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    return True


def synchronized_moving_statistics(next_creator, **kwargs):
    """A `tf.variable_creator_scope` creator: batch-norm moving statistics are averaged over
    all replicas at each update (`aggregation=MEAN`). Use it around model building:

        with strategy.scope(), tf.variable_creator_scope(synchronized_moving_statistics):
            model = build_model(...)
    """
    name = kwargs.get("name") or ""
    if (
        MOVING_STATISTICS.applies()
        and not kwargs.get("trainable", True)
        and ("moving_mean" in name or "moving_var" in name)
    ):
        import tensorflow as tf

        kwargs["aggregation"] = tf.VariableAggregation.MEAN
    return next_creator(**kwargs)


@contextlib.contextmanager
def no_ema_finalize(optimizer):
    """Within the block, `optimizer.finalize_variable_values` (which `fit` calls at its end to
    copy the moving averages into the model) does nothing; call it yourself afterwards."""
    optimizer.finalize_variable_values = lambda variables: None
    try:
        yield optimizer
    finally:
        del optimizer.finalize_variable_values
