"""Single-thread, batch-1 latency of `.tflite` models with the LiteRT interpreter, side by side.

    python -m tflite.benchmark ghostnet_100 --peers --quantize=none,int8 \\
        --calibration_data=folder:/data/imagenette --runs=200
    python -m tflite.benchmark model.tflite other.tflite --runs=100

Each argument is a `.tflite` file or a registry model name. Registry models (and, with
``--peers``, keras.applications MobileNetV2-1.0 and MobileNetV3-Large-0.75/1.0, all taking
0-255 RGB input with the normalisation in the graph) are converted here the same way:
``tflite.optimize.export_graph`` (an equivalent graph that converts to fewer, fused ops),
the conversion with the same quantization and the same real calibration images, then
``tflite.flatbuffer.finish_flatbuffer`` (float softmax for int8, float depthwise kernels for
dynamic range) and the metadata: the chain of ``tflite.export.export``, as
``tflite.convert`` runs it. ``--nooptimize`` skips both kinds of rewrites.

Timing: one LiteRT ``Interpreter`` per model (``num_threads`` threads, XNNPACK, its default
delegate), ``--warmup`` invocations each, then ``--runs`` rounds in which every model is
invoked once in turn (round robin, so that noise from other processes on the machine hits
every model alike). The table shows the median and the 10th percentile in milliseconds and
their ratios to the first row of the same quantization (the first peer, MobileNetV2-1.0,
with ``--peers``). On a loaded machine the 10th percentile is the steadier estimate of the
uncontended latency: preemption inflates the median of the longer-running models more.

Profiles: ``--profile`` times the model's prefixes cut after every ADD (one residual block
per segment, fused as in the whole graph); ``--op_profile`` times every op alone as a model
of its own (``single_op_models``) and totals the time per op type.

Delegation, timing and the profiles are :mod:`tflite.latency`; the flatbuffer reading and
rewrites are :mod:`tflite.flatbuffer`. This module adds the peers, the conversion they all
share, the table and the command line.
"""

import collections
import os
import statistics
import sys

import numpy as np

from tflite import _cli, latency
from tflite import flatbuffer as fb
from tflite.converter import QUANTIZE_CHOICES

PEERS = ("mobilenet_v2_100", "mobilenet_v3_large_075", "mobilenet_v3_large_100")
# ImageNet top-1 (%) as published: the GhostNet paper (Table 8) and the keras.applications
# documentation for the MobileNets. Other registry models: their weights entry's top-1
# (`published_top1`).
PUBLISHED_TOP1 = {
    "ghostnet_050": 66.2,
    "ghostnet_100": 73.9,
    "ghostnet_130": 75.7,
    "mobilenet_v2_100": 71.8,
    "mobilenet_v3_large_075": 73.3,
    "mobilenet_v3_large_100": 75.2,
}
QUANTIZATIONS = QUANTIZE_CHOICES


def published_top1(name):
    """The published ImageNet top-1 (%) of a peer or registry model, or ``None``."""
    if name in PUBLISHED_TOP1:
        return PUBLISHED_TOP1[name]
    from ghostnet_keras.registry import get_pretrained

    entry = get_pretrained(name)
    if isinstance(entry, dict):
        entry = entry[""]
    return entry.top1 if entry is not None else None


def peer_model(name, input_shape=(224, 224, 3)):
    """A keras.applications MobileNet taking 0-255 RGB with its normalisation in the graph.

    ``mobilenet_v2_100`` (MobileNetV2, alpha 1.0, with a ``Rescaling(1/127.5, offset=-1)``
    in front as its ``preprocess_input``), ``mobilenet_v3_large_075`` and
    ``mobilenet_v3_large_100`` (MobileNetV3Large, ``include_preprocessing=True``). Random
    weights: latency does not depend on them.
    """
    import keras

    if name == "mobilenet_v2_100":
        inputs = keras.Input(input_shape, name="input_layer")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocessing")(inputs)
        return keras.applications.MobileNetV2(
            alpha=1.0, weights=None, input_tensor=x, name="mobilenet_v2_100"
        )
    alphas = {"mobilenet_v3_large_075": 0.75, "mobilenet_v3_large_100": 1.0}
    if name in alphas:
        return keras.applications.MobileNetV3Large(
            input_shape=input_shape,
            alpha=alphas[name],
            weights=None,
            include_preprocessing=True,
            name=name,
        )
    raise ValueError(f"Unknown peer model; choose from {', '.join(PEERS)}. Received: name={name!r}")


def cpu_description(cpuinfo="/proc/cpuinfo", machine=None):
    """The CPU and the SIMD extensions that decide which XNNPACK kernels run, as one line.

    Latency ratios between models depend on them: int8 convolutions are much faster, next to
    float32, with AVX-512 VNNI (or ARM's dot-product instructions) than with AVX2 alone.
    For example ``"AMD EPYC (x86_64): AVX2, FMA; no AVX-512, no VNNI"``.
    """
    import platform

    machine = machine or platform.machine()
    name, flags = "", set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and not name:
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    if not flags:
        return f"{name} ({machine})"
    if machine in ("x86_64", "AMD64", "i686"):
        has = [
            label
            for flag, label in (
                ("avx2", "AVX2"),
                ("fma", "FMA"),
                ("avx512f", "AVX-512"),
                ("avx512_vnni", "AVX-512 VNNI"),
                ("avx_vnni", "AVX-VNNI"),
            )
            if flag in flags
        ]
        lacks = []
        if "avx512f" not in flags:
            lacks.append("AVX-512")
        if not flags & {"avx512_vnni", "avx_vnni"}:
            lacks.append("VNNI")
        return (
            f"{name} ({machine}): "
            + ", ".join(has)
            + ("; no " + ", no ".join(lacks) if lacks else "")
        )
    arm = [
        label
        for flag, label in (("asimddp", "dot product"), ("i8mm", "i8mm"), ("fphp", "fp16"))
        if flag in flags
    ]
    return f"{name} ({machine}): NEON" + ("".join(f", {a}" for a in arm))


def _calibration_images(spec, count, size):
    from ghostnet_keras.data import image_source

    source = image_source(spec, "calibration", image_size=size, num_images=count)
    return np.concatenate([x for x, _ in source.batches])


def convert_for_benchmark(
    model,
    quantize,
    *,
    io="float",
    calibration=None,
    optimize=True,
    rewrites=None,
    float_softmax=True,
):
    """Converts a Keras model as every export does (:func:`tflite.export.export`: graph
    rewrites, conversion, flatbuffer rewrites, metadata), calibrating int8 on all of
    ``calibration``.

    ``optimize=False`` converts the model as it is; ``rewrites`` picks the export-graph
    rewrites (default: ``tflite.optimize.DEFAULT_REWRITES``; names and rewrite functions, see
    ``export_graph``); ``float_softmax=False`` skips the flatbuffer rewrite of a quantized
    final softmax (``float_depthwise`` still applies). An int8 input gets no metadata
    (MediaPipe cannot load it; the latency is the same).
    """
    from tflite import export

    options = export.ExportOptions(
        quantize=quantize,
        io=io,
        num_calibration=len(calibration) if calibration is not None else 200,
        optimize=optimize,
        metadata=io != "int8",
    )
    (flatbuffer,) = export.export_variants(
        model,
        [options],
        representative_images=calibration,
        rewrites=rewrites,
        float_softmax=float_softmax,
    )
    return flatbuffer


def _keras_model(name):
    """A peer, or a registry model in the form it is deployed in (GhostNetV3
    reparameterized: what ``tflite.convert`` converts, and what the MACs column counts)."""
    if name in PEERS:
        return peer_model(name)
    import ghostnet_keras
    from tflite import convert

    return ghostnet_keras.reparameterize(convert.load_model(name))


def _row(name, quantize, flatbuffer, model=None, interpreter=None):
    row = {
        "model": name,
        "quantize": quantize,
        "size": len(flatbuffer),
        "flatbuffer": flatbuffer,
        "params": None,
        "macs": None,
    }
    if model is not None:
        import ghostnet_keras

        info = ghostnet_keras.profile(model)
        row["params"], row["macs"] = info["params"], info["macs"]
    row["delegation"] = latency.delegation(flatbuffer)
    row["census"] = fb.op_census(flatbuffer)
    row["flatbuffer_for_profile"] = flatbuffer
    return row


def format_table(rows):
    """A Markdown table of benchmark rows (with ``ms`` and ``p10`` filled in)."""
    lines = [
        "| model | quantization | MACs | params | size (bytes) | size/params | ms (median) "
        "| ms (p10) | ratio | ratio (p10) | XNNPACK ops |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    first = {}
    for row in rows:
        base, base_p10 = first.setdefault(row["quantize"], (row["ms"], row["p10"]))
        macs = f"{row['macs'] / 1e6:,.1f}M" if row["macs"] else "-"
        params = f"{row['params']:,}" if row["params"] else "-"
        per_param = f"{row['size'] / row['params']:.3f}" if row["params"] else "-"
        d = row["delegation"]
        ops = f"{d['delegated']}/{d['total']}"
        if d["not_delegated"]:
            ops += " (not: " + ", ".join(f"{k} x{v}" for k, v in d["not_delegated"].items()) + ")"
        lines.append(
            f"| {row['model']} | {row['quantize']} | {macs} | {params} | {row['size']:,} "
            f"| {per_param} | {row['ms']:.2f} | {row['p10']:.2f} | {row['ms'] / base:.2f} "
            f"| {row['p10'] / base_p10:.2f} | {ops} |"
        )
    return "\n".join(lines)


def run_benchmark(
    models,
    *,
    peers=False,
    quantize=("none",),
    io="float",
    calibration_data=None,
    num_calibration=100,
    runs=100,
    warmup=10,
    num_threads=1,
    optimize=True,
    save_dir=None,
    progress=print,
):
    """Converts (where needed) and times ``models``; returns the table rows.

    Args:
        models: `.tflite` paths and/or registry model names.
        peers: put keras.applications MobileNetV2-1.0 and MobileNetV3-Large-0.75/1.0 first.
        quantize: the quantizations to convert Keras models to (`.tflite` files are taken
            as they are, once).
        io: the input type of the converted models (``convert_model``'s ``io``).
        calibration_data: ``folder:PATH`` or a TFDS name, for ``int8``.
        num_calibration: calibration images.
        runs, warmup, num_threads: see :func:`tflite.latency.measure_latency`.
        optimize: apply ``export_graph`` and ``finish_flatbuffer``.
        save_dir: if given, write the converted models there as ``NAME_QUANTIZE.tflite``
            (to run them on a phone with ``benchmark_model``).
        progress: ``callable(str)`` for progress lines, or None.

    Returns:
        A list of dicts (``model``, ``quantize``, ``macs``, ``params``, ``size``, ``ms``,
        ``p10``, ``delegation``, ``times``), in table order.
    """
    progress = progress or (lambda line: None)
    quantize = _checked_quantize(quantize)
    paths, keras_names = _split_models(models, peers)
    contents = {path: _checked_file(path, num_threads) for path in paths}
    keras_names = _checked_keras_names(keras_names, peers)
    calibration = None
    if keras_names and "int8" in quantize:
        calibration = _benchmark_calibration(calibration_data, num_calibration, progress)
    rows = []
    for q in quantize if keras_names else ():
        for name in keras_names:
            progress(f"Converting {name} (quantize={q}, io={io})...")
            rows.append(_converted_row(name, q, io, calibration, optimize, save_dir, progress))
    for path in paths:
        rows.append(_row(os.path.basename(path), "(file)", contents[path]))
    _time_rows(rows, runs, warmup, num_threads, progress)
    return rows


def _checked_quantize(quantize):
    quantize = tuple(quantize)
    for q in quantize:
        if q not in QUANTIZATIONS:
            raise ValueError(
                f"`quantize` must be among {', '.join(QUANTIZATIONS)}. Received: quantize={q!r}"
            )
    return quantize


def _split_models(models, peers):
    """``(.tflite paths, the other names)``."""
    names = list(models)
    if not names and not peers:
        raise ValueError("Nothing to benchmark: give models or peers=True. Received: models=[]")
    paths = [m for m in names if m.endswith(".tflite") or os.path.isfile(m)]
    return paths, [m for m in names if m not in paths]


def _checked_keras_names(keras_names, peers):
    """The Keras models to convert, the peers first where asked; a name that is neither a
    file nor a registry model is a ``ValueError``."""
    if keras_names or peers:
        import ghostnet_keras
        from ghostnet_keras import extras

        extras.require("tensorflow", "tflite", "converting Keras models to TFLite")

        known = set(ghostnet_keras.list_models())
        for name in keras_names:
            if name not in known and name not in PEERS:
                raise ValueError(
                    "Not a .tflite file nor a registry model (see ghostnet_keras.list_models()). "
                    f"Received: model={name!r}"
                )
    if peers:
        keras_names = [p for p in PEERS if p not in keras_names] + keras_names
    return keras_names


def _checked_file(path, num_threads):
    """The contents of a ``.tflite`` file, loaded and run once up front, naming the file:
    missing, a folder, not a flatbuffer, truncated, damaged."""
    contents = fb.read_file(path, "model")
    interpreter = latency.load_interpreter(contents, num_threads, source=path)
    latency.invoke(interpreter, source=path)
    return contents


def _benchmark_calibration(calibration_data, num_calibration, progress):
    if not calibration_data:
        raise ValueError(
            "int8 conversion needs real calibration images: calibration_data='folder:PATH' "
            "or a TFDS name. Received: calibration_data=None"
        )
    calibration = _calibration_images(calibration_data, num_calibration, 224)
    progress(f"Calibration: {len(calibration)} images of {calibration_data}")
    return calibration


def _converted_row(name, q, io, calibration, optimize, save_dir, progress):
    """The row of one Keras model converted with quantization ``q`` (written to
    ``save_dir`` if given)."""
    model = _keras_model(name)
    flatbuffer = convert_for_benchmark(
        model,
        q,
        io=io,
        calibration=calibration if q == "int8" else None,
        optimize=optimize,
    )
    row = _row(name, q, flatbuffer, model)
    if save_dir:
        from ghostnet_keras import files

        os.makedirs(save_dir, exist_ok=True)
        path = os.path.join(save_dir, f"{name}_{q}.tflite")
        files.write_bytes(path, flatbuffer)
        progress(f"  wrote {path}")
    return row


def _time_rows(rows, runs, warmup, num_threads, progress):
    """Times every row's flatbuffer (interleaved rounds) and puts its times in the row."""
    progress(f"Timing {len(rows)} models: {runs} interleaved rounds, {num_threads} thread(s)")
    times = latency.measure_latency(
        {i: row["flatbuffer"] for i, row in enumerate(rows)},
        runs=runs,
        warmup=warmup,
        num_threads=num_threads,
        progress=progress,
    )
    for i, row in enumerate(rows):
        row["times"] = times[i]
        row["ms"] = statistics.median(times[i])
        row["p10"] = float(np.percentile(times[i], 10))
        row.pop("flatbuffer")


def _parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tflite.benchmark",
        description="Single-thread batch-1 LiteRT latency of .tflite files and registry models.",
    )
    add = parser.add_argument
    add("models", nargs="*", help="PATH.tflite files and/or registry model names")
    add("--peers", action="store_true", help="add MobileNetV2-1.0, MobileNetV3-Large-0.75/1.0")
    add("--quantize", default="none", help="comma list of none|float16|dynamic|int8")
    add("--io", default="float", help="input type of converted models: float|uint8|int8")
    add("--calibration_data", default=None, help="folder:PATH or a TFDS name (int8)")
    add("--num_calibration", type=int, default=100, help="calibration images (default 100)")
    add("--runs", type=int, default=100, help="interleaved timing rounds (default 100)")
    add("--warmup", type=int, default=10, help="untimed invocations per model (default 10)")
    add("--threads", type=int, default=1, help="interpreter threads (default 1)")
    add("--nooptimize", dest="optimize", action="store_false", help="convert without rewrites")
    add("--census", action="store_true", help="also print the op census of every model")
    add("--save_dir", default=None, help="write the converted .tflite files to this folder")
    add("--profile", action="store_true", help="also time each residual block (cut at ADD)")
    add("--op_profile", action="store_true", help="also time every op alone, totals per op type")
    add("--output", default=None, help="also write the table (Markdown) to this file")
    _cli.add_verbose(parser)
    return parser.parse_args(argv)


def _validate_args(args):
    if args.runs < 1 or args.threads < 1 or args.warmup < 0 or args.num_calibration < 1:
        raise ValueError(
            "--runs, --threads and --num_calibration must be >= 1 and --warmup >= 0. "
            f"Received: runs={args.runs}, threads={args.threads}, warmup={args.warmup}, "
            f"num_calibration={args.num_calibration}"
        )
    if args.output:  # before the work: a table that cannot be written loses the timings
        _cli.check_output(args.output, "output")
    if args.save_dir:
        _cli.check_folder(args.save_dir, "save_dir")


def run(args, argv=None):
    """The command line's work, on parsed arguments; returns the table rows."""
    _validate_args(args)
    rows = run_benchmark(
        args.models,
        peers=args.peers,
        quantize=[q.strip() for q in args.quantize.split(",") if q.strip()],
        io=args.io,
        calibration_data=args.calibration_data,
        num_calibration=args.num_calibration,
        runs=args.runs,
        warmup=args.warmup,
        num_threads=args.threads,
        optimize=args.optimize,
        save_dir=args.save_dir,
    )
    table = format_table(rows)
    if args.profile:
        for row in rows:
            print(f"Segments of {row['model']} ({row['quantize']}), cut after each ADD:")
            for seg in latency.profile_segments(row["flatbuffer_for_profile"], runs=args.runs):
                ops = ", ".join(f"{k} {v}" for k, v in seg["ops"].items())
                print(
                    f"  ops ..{seg['end_op']:3d}  {seg['cumulative_ms']:7.3f} ms cumulative  "
                    f"{seg['segment_ms']:+7.3f} ms  {ops}"
                )
    if args.op_profile:
        for row in rows:
            ops = latency.op_profile(row["flatbuffer_for_profile"], runs=args.runs)
            totals = collections.defaultdict(lambda: [0, 0.0])
            for op in ops:
                totals[op["op"]][0] += 1
                totals[op["op"]][1] += op["ms"]
            print(
                f"Ops of {row['model']} ({row['quantize']}), each timed alone: "
                f"{sum(op['ms'] for op in ops):.3f} ms in all"
            )
            for name, (count, ms) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
                print(f"  {name:24s} x{count:<4d} {ms:8.3f} ms")
    if args.census:
        for row in rows:
            ops = ", ".join(f"{k} {v}" for k, v in row["census"].most_common())
            print(f"{row['model']} ({row['quantize']}): {ops}")
    cpu = f"{cpu_description()}, {args.threads} thread(s)"
    print(cpu)
    print(table)
    if args.output:
        command = "python -m tflite.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
        from ghostnet_keras import files

        files.write_bytes(args.output, f"```\n{command}\n```\n\n{cpu}\n\n{table}\n".encode())
    return rows


def main(argv=None):
    # Timing .tflite files needs LiteRT only; converting Keras models also needs TensorFlow
    # (run_benchmark asks for it then).
    required = (("ai_edge_litert", "the LiteRT interpreter"),)
    return _cli.run_cli(
        _parse_args,
        lambda args: run(args, argv),
        argv,
        required=required,
        validate=_validate_args,
    )


if __name__ == "__main__":
    sys.exit(main())
