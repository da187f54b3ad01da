"""LiteRT on the host CPU: XNNPACK delegation, interleaved latency and latency profiles.

``delegation`` reports which ops XNNPACK runs; ``measure_latency`` times several models in
interleaved rounds (so that noise from other processes hits every model alike);
``profile_segments`` and ``op_profile`` time the cuts of :mod:`tflite.flatbuffer`
(``truncated_models``: one residual block per segment; ``single_op_models``: every op alone).
``python -m tflite.benchmark`` is the command line over them.

Delegation: the interpreter lists the model's nodes and, after them, one ``DELEGATE`` node
per partition that XNNPACK took; each partition is the set of nodes between the partition's
inputs and outputs, found by walking back from its outputs. Nodes in no partition run on
the reference CPU kernels.
"""

import collections
import time

import numpy as np

from tflite import flatbuffer as fb


def load_interpreter(flatbuffer, num_threads=1, source=None, argument="model"):
    """A LiteRT ``Interpreter`` (XNNPACK, its default delegate) with its tensors allocated.

    Raises a ``ValueError`` naming ``source`` (as ``argument=source``) when the bytes are not
    a model LiteRT can load (not a flatbuffer, truncated, damaged). LiteRT's note on the
    XNNPACK delegate is not printed unless verbose (``ghostnet_keras.cli.quiet_native``).
    """
    from ai_edge_litert.interpreter import Interpreter

    from ghostnet_keras import cli

    if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
        raise ValueError(
            f"`num_threads` must be a positive integer. Received: num_threads={num_threads!r}"
        )
    fb.check_tflite(flatbuffer, source, argument)
    try:
        with cli.quiet_native():
            result = Interpreter(model_content=bytes(flatbuffer), num_threads=num_threads)
            result.allocate_tensors()
            # Reads every tensor name: a damaged name is invalid UTF-8 (UnicodeDecodeError).
            result.get_input_details()
            result.get_output_details()
    except (RuntimeError, ValueError) as err:
        raise _damaged(err, "load", source, argument, flatbuffer) from None
    return result


def _damaged(err, action, source, argument, content=b""):
    """The ``ValueError`` for a model that LiteRT cannot ``action`` (load, run)."""
    first = str(err).strip().splitlines()
    detail = first[0] if first else type(err).__name__
    return ValueError(
        f"{fb.subject(source)} damaged or not a TFLite model: LiteRT cannot {action} it "
        f"({detail}). Received: {fb.received(source, argument, content)}"
    )


def invoke(interpreter, source=None, argument="model"):
    """``interpreter.invoke()``; a ``ValueError`` naming ``source`` when LiteRT fails to run
    it (a damaged file that loaded: an op whose tensors do not fit it)."""
    try:
        interpreter.invoke()
    except RuntimeError as err:
        raise _damaged(err, "run", source, argument) from None


def delegation(flatbuffer, num_threads=1, interpreter=None):
    """How many ops of the model the XNNPACK delegate runs.

    Returns:
        A dict: ``delegated`` and ``total`` (op counts), ``partitions`` (delegate kernels)
        and ``not_delegated`` (a ``Counter`` of the ops left to the reference kernels).
    """
    interpreter = interpreter or load_interpreter(flatbuffer, num_threads)
    nodes = interpreter._get_ops_details()
    model_ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    producer = {int(t): n["index"] for n in model_ops for t in n["outputs"]}
    by_index = {n["index"]: n for n in nodes}
    covered = set()
    for delegate in delegates:
        boundary = {int(t) for t in delegate["inputs"]}
        stack, seen = [int(t) for t in delegate["outputs"]], set()
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor in seen or tensor not in producer:
                continue
            seen.add(tensor)
            covered.add(producer[tensor])
            stack.extend(int(t) for t in by_index[producer[tensor]]["inputs"] if t >= 0)
    left = collections.Counter(n["op_name"] for n in model_ops if n["index"] not in covered)
    return {
        "delegated": len(covered),
        "total": len(model_ops),
        "partitions": len(delegates),
        "not_delegated": left,
    }


def profile_segments(flatbuffer, *, runs=100, num_threads=1, cut_ops=("ADD",)):
    """Per-segment latency (ms, 10th percentile of interleaved runs) of a `.tflite` model.

    Returns a list of dicts ``end_op``, ``ops`` (a Counter of the segment's ops),
    ``cumulative_ms`` and ``segment_ms`` (difference of consecutive prefixes; noisy at the
    0.01 ms level, and a segment whose output is a PAD also pays the unfused PAD).
    """
    parts = fb.truncated_models(flatbuffer, cut_ops)
    times = measure_latency(
        {i: blob for i, (_, _, blob) in enumerate(parts)}, runs=runs, num_threads=num_threads
    )
    rows, previous = [], 0.0
    for i, (cut, segment, _) in enumerate(parts):
        cumulative = float(np.percentile(times[i], 10))
        rows.append(
            {
                "end_op": cut,
                "ops": segment,
                "cumulative_ms": cumulative,
                "segment_ms": cumulative - previous,
            }
        )
        previous = cumulative
    return rows


def op_profile(flatbuffer, *, runs=200, num_threads=1):
    """Op-level profile: each op timed alone, warm (its weights and input in cache).

    Returns a list of dicts ``index``, ``op``, ``shape`` (of the output) and ``ms`` (the
    best of 5 averages over ``runs`` consecutive invocations). Their sum is close to the
    warm latency of the whole model but not equal: alone, an op cannot be fused with its
    neighbour (XNNPACK folds a PAD into the next convolution, so a PAD alone costs a copy
    that the whole graph does not pay) and its data is always in cache.
    """
    rng = np.random.default_rng(0)
    rows = []
    for index, (op, shape, blob) in enumerate(fb.single_op_models(flatbuffer)):
        interpreter = load_interpreter(blob, num_threads)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(detail, rng))
        for _ in range(10):
            interpreter.invoke()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(runs):
                interpreter.invoke()
            best = min(best, (time.perf_counter() - start) / runs * 1e3)
        rows.append({"index": index, "op": op, "shape": shape, "ms": best})
    return rows


def _random_input(detail, rng):
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(dtype)
    return rng.uniform(0.0, 255.0, detail["shape"]).astype(dtype)


def measure_latency(flatbuffers, *, runs=100, warmup=10, num_threads=1, progress=None):
    """Interleaved latency of several models.

    Args:
        flatbuffers: a dict ``name -> .tflite bytes``.
        runs: rounds; in each, every model is invoked once, in turn.
        warmup: invocations of each model before timing.
        num_threads: interpreter threads.
        progress: optional ``callable(str)`` for progress lines.

    Returns:
        A dict ``name -> list of per-invocation milliseconds`` (``runs`` each).
    """
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"`runs` must be a positive integer. Received: runs={runs!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"`warmup` must be an integer >= 0. Received: warmup={warmup!r}")
    rng = np.random.default_rng(0)
    interpreters = {}
    for name, flatbuffer in flatbuffers.items():
        interpreter = load_interpreter(flatbuffer, num_threads, source=str(name))
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(detail, rng))
        invoke(interpreter, source=str(name))  # untimed: a model that cannot run is named
        for _ in range(warmup):
            interpreter.invoke()
        interpreters[name] = interpreter
    times = {name: [] for name in interpreters}
    clock = time.perf_counter
    for round_index in range(runs):
        for name, interpreter in interpreters.items():
            start = clock()
            interpreter.invoke()
            times[name].append((clock() - start) * 1e3)
        if progress and (round_index + 1) % max(1, runs // 5) == 0:
            progress(f"  round {round_index + 1}/{runs}")
    return times
