"""Choosing the `tf.distribute` strategy of a training run and the chief worker's role.

On the other Keras backends there is no `tf.distribute`: a run trains on the backend's
default device (the first GPU where there is one) through `SingleDevice`, which offers the
little of a strategy's interface that the trainer uses (tested on JAX: .ci/jax)."""

import contextlib
import json
import os
import warnings

import keras

from training import config as config_lib


class SingleDevice:
    """The strategy of a run without TensorFlow (`KERAS_BACKEND=jax`): one replica
    on the backend's default device; datasets are made by their function directly."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    class InputContext:
        """The one input pipeline of the one replica (`tf.distribute.InputContext`'s parts)."""

        num_input_pipelines = 1
        input_pipeline_id = 0

        @staticmethod
        def get_per_replica_batch_size(global_batch_size):
            return global_batch_size

    def scope(self):
        return contextlib.nullcontext()

    def distribute_datasets_from_function(self, dataset_fn):
        return dataset_fn(self.InputContext())


def uses_tensorflow():
    """Whether runs go through `tf.distribute`: on Keras's TensorFlow backend."""
    return keras.backend.backend() == "tensorflow"


def resolve_strategy_name(name, tpu=None):
    """Which strategy `name="auto"` means here: `tpu` if a TPU is given, `TF_CONFIG` set means
    `multi_worker_mirrored`, more than one local GPU means `mirrored`, else `one_device` (always
    on the other backends)."""
    if name != "auto":
        return name
    if not uses_tensorflow():
        return "one_device"
    import tensorflow as tf

    if tpu:
        return "tpu"
    if os.environ.get("TF_CONFIG"):
        return "multi_worker_mirrored"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "one_device"


def make_strategy(name="auto", tpu=None, cpu_replicas=None):
    """Builds the strategy; call it before any other TensorFlow op (multi-worker needs that).

    Args:
        name: `"auto"`, `"one_device"`, `"mirrored"`, `"multi_worker_mirrored"` or `"tpu"`.
        tpu: the TPU name or `grpc://` address for `"tpu"` (`"local"` on a TPU VM).
        cpu_replicas: without GPUs, split the CPU into this many logical devices and mirror
            over them (to try multi-replica training on a laptop or in tests).
    """
    name = resolve_strategy_name(name, tpu)
    if not uses_tensorflow():
        if name != "one_device" or (cpu_replicas or 1) > 1:
            raise ValueError(
                f"Several replicas (tf.distribute) need the TensorFlow backend; on "
                f"{keras.backend.backend()} a run trains on one device. Received: "
                f"strategy={name!r}, cpu_replicas={cpu_replicas}"
            )
        return SingleDevice()
    import tensorflow as tf

    if cpu_replicas and cpu_replicas > 1 and not tf.config.list_physical_devices("GPU"):
        if os.environ.get(config_lib.ONEDNN_SWITCH) != "0":
            warnings.warn(
                f"cpu_replicas={cpu_replicas} with TensorFlow's oneDNN kernels: an evaluation "
                "set that does not divide evenly among the replicas fails on its last batch. "
                f"Set {config_lib.ONEDNN_SWITCH}=0 before TensorFlow loads (python -m "
                "training.train does).",
                stacklevel=2,
            )
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
        )
        if name == "mirrored":
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices)
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        if not tpu:
            raise ValueError("--strategy=tpu needs the TPU name or address. Received: tpu=None")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(
        "Unknown strategy: use auto, one_device, mirrored, multi_worker_mirrored or tpu. "
        f"Received: strategy={name!r}"
    )


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return  # a single worker, which MultiWorkerMirroredStrategy allows
    try:
        config = json.loads(raw)
        config["cluster"]["worker"]
        config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "TF_CONFIG must be JSON with cluster.worker and task.type/index "
            f"({error}). Received: TF_CONFIG={raw!r}"
        ) from None


def task_info(strategy):
    """Returns `(task_type, task_id)` of this process (`("worker", 0)` when not distributed)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "worker", 0
    return resolver.task_type, resolver.task_id or 0


def is_chief(strategy):
    """Whether this process writes the checkpoints, logs and the final model: the `chief` task,
    or worker 0 if the cluster has no chief, or the only process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
