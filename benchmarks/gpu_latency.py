"""Forward latency in the paper's GPU setting (Tables 15, 17, 18; Figure 15), and training
throughput with the trainer's XLA and mixed precision.

    python -m benchmarks.gpu_latency                          # batch 1, 8 and 64 at 224 px
    python -m benchmarks.gpu_latency --rows=resnet34,g_ghost_resnet34 --batches=64

Rows: G-Ghost RegNetX-3.2/4.0/8.0/16GF against RegNetX (Table 18), G-Ghost ResNet34 against
ResNet34 (Table 15), G-GhostNet against C-GhostNet, `keras.applications` MobileNetV3-Large and
EfficientNet-B0 (Figure 15). For each row, batch and dtype (float32; float16: Keras's
`mixed_float16` policy) the forward pass is Keras's compiled prediction with
`jit_compile=True` (XLA), warmed up, then timed over `--runs` calls, each waited for (its
output copied to the host); the median, 10th and 90th percentiles are reported. Then the
training step of the row, built and compiled by the trainer (`training.models.build_model`,
`training.optimization.compile_model` with `--jit_compile --mixed_precision`), is timed over
`--train_steps` steps on one fixed batch (images per second). The paper's V100 latencies at
batch 64 are printed beside ours.

Runs on a CPU too (small `--batches` and `--size`, so that a test covers it); the results file
(`benchmarks/results/gpu_latency.md` unless `--output`) names the device. It needs no
TensorFlow: `KERAS_BACKEND=jax python -m benchmarks.gpu_latency` runs it with JAX's XLA (the
project's GPU machines have JAX, not TensorFlow).
"""

import argparse
import pathlib
import sys
import time

import numpy as np

from benchmarks.reproduce_cifar import device_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu_latency.md"

# row name -> (how to build it, the paper's V100 latency in ms at batch 64 or None, where)
ROWS = {
    "regnetx_032": ("registry", 59.1, "Table 18"),
    "g_ghost_regnetx_032": ("registry", 44.4, "Table 18"),
    "regnetx_040": ("registry", None, "Table 18"),
    "g_ghost_regnetx_040": ("registry", None, "Table 18"),
    "regnetx_080": ("registry", None, "Table 18"),
    "g_ghost_regnetx_080": ("registry", None, "Table 18"),
    "regnetx_160": ("registry", None, "Table 18"),
    "g_ghost_regnetx_160": ("registry", None, "Table 18"),
    "resnet34": ("registry", 29.1, "Table 15"),
    "g_ghost_resnet34": ("registry", 24.5, "Table 15"),
    "ghostnet_100": ("registry", None, "Figure 15 (C-GhostNet)"),
    "g_ghostnet_100": ("registry", None, "Figure 15 (G-GhostNet)"),
    "MobileNetV3Large": ("keras.applications", None, "Figure 15"),
    "EfficientNetB0": ("keras.applications", None, "Figure 15"),
}
DTYPES = {"float32": "float32", "float16": "mixed_float16"}


def build(name, size):
    """The row's model at `size` x `size`, random weights, 1000 classes."""
    import keras

    import ghostnet_keras

    if ROWS[name][0] == "keras.applications":
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    return ghostnet_keras.create_model(name, input_shape=(size, size, 3))


def forward_latency(model, batch, size, runs, warmup):
    """Milliseconds of the XLA-compiled forward pass: `(median, p10, p90)`. The pass is Keras's
    own compiled prediction (`jit_compile=True`: `tf.function(jit_compile=True)` under
    TensorFlow, `jax.jit` under JAX), on an input already on the device; each call returns its
    1000 scores to the host, which waits for the pass to end."""
    import keras

    model.compile(jit_compile=True)
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    x = keras.ops.convert_to_tensor(x)
    for _ in range(warmup):
        model.predict_on_batch(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append((time.perf_counter() - start) * 1e3)
    return tuple(float(v) for v in np.percentile(times, [50, 10, 90]))


def train_throughput(name, batch, size, steps):
    """Training images per second of the row with the trainer's `--jit_compile
    --mixed_precision` model and compilation (`training.models`, `training.optimization`:
    no TensorFlow needed, so it runs under JAX too), warm-up step excluded."""
    import keras

    from training import models, optimization, recipes

    config = recipes.make_config(
        model=name if ROWS[name][0] == "registry" else "ghostnet_100",
        dataset="imagenet2012",
        model_dir="-",
        image_size=size,
        batch_size=batch,
        mixed_precision=True,
        jit_compile=True,
    )
    keras.config.set_dtype_policy(DTYPES["float16"])
    try:
        if ROWS[name][0] == "registry":
            model = models.build_model(config, 1000)
        else:
            model = build(name, size)
        optimization.compile_model(model, config, steps_per_epoch=steps)
        rng = np.random.default_rng(0)
        x = keras.ops.convert_to_tensor(rng.uniform(0, 255, (batch, size, size, 3)), "float32")
        y = keras.ops.convert_to_tensor(
            keras.utils.to_categorical(rng.integers(0, 1000, batch), 1000)
        )
        model.train_on_batch(x, y)  # traces and compiles
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        float(np.asarray(loss).ravel()[0])  # waits for the last step
        return steps * batch / (time.perf_counter() - start)
    finally:
        keras.config.set_dtype_policy("float32")


def measure(args, printer=print):
    """One result dict per row, batch and dtype (and one per row for training)."""
    import keras

    results = []
    for name in args.rows:
        for dtype in args.dtypes:
            keras.config.set_dtype_policy(DTYPES[dtype])
            try:
                model = build(name, args.size)
                for batch in args.batches:
                    median, p10, p90 = forward_latency(
                        model, batch, args.size, args.runs, args.warmup
                    )
                    results.append(
                        {"row": name, "dtype": dtype, "batch": batch, "ms": (median, p10, p90)}
                    )
                    printer(
                        f"{name} {dtype} batch {batch}: {median:.2f} ms "
                        f"(p10 {p10:.2f}, p90 {p90:.2f})"
                    )
            finally:
                keras.config.set_dtype_policy("float32")
                keras.backend.clear_session()
        if args.train_steps:
            rate = train_throughput(name, args.train_batch, args.size, args.train_steps)
            keras.backend.clear_session()
            results.append({"row": name, "train_images_per_second": rate})
            printer(
                f"{name} training (XLA, mixed precision, batch {args.train_batch}): "
                f"{rate:.1f} images/s"
            )
    return results


def markdown(args, results):
    import keras

    lines = [
        "# Forward latency and training throughput (benchmarks/gpu_latency.py)",
        "",
        f"Command: `python -m benchmarks.gpu_latency {' '.join(args.argv)}`",
        "",
        f"- device: {device_name()}; Keras {keras.__version__} on {keras.backend.backend()}",
        f"- {args.size}x{args.size}, XLA-compiled forward pass, {args.warmup} warm-up and "
        f"{args.runs} timed runs; float16 is Keras's mixed_float16 policy",
        "",
        "| row | dtype | batch | median ms | p10 ms | p90 ms | paper ms (V100, batch 64) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "ms" in r:
            paper, where = ROWS[r["row"]][1:]
            shown = f"{paper} ({where})" if paper and r["batch"] == 64 else where
            lines.append(
                f"| {r['row']} | {r['dtype']} | {r['batch']} | {r['ms'][0]:.2f} | {r['ms'][1]:.2f} "
                f"| {r['ms'][2]:.2f} | {shown} |"
            )
    trained = [r for r in results if "train_images_per_second" in r]
    if trained:
        lines += [
            "",
            f"Training, `--jit_compile --mixed_precision`, batch {args.train_batch}, "
            f"{args.train_steps} steps after one warm-up step:",
            "",
            "| row | images/s |",
            "|---|---:|",
        ]
        lines += [f"| {r['row']} | {r['train_images_per_second']:.1f} |" for r in trained]
    return "\n".join(lines) + "\n"


def _names(text):
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")
    return names


def _ints(text):
    return [int(n) for n in text.split(",") if n]


def _dtypes(text):
    names = [n for n in text.split(",") if n]
    if not names or any(n not in DTYPES for n in names):
        raise argparse.ArgumentTypeError(f"dtypes are float32 and float16; got {text!r}")
    return names


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_names, default=list(ROWS))
    parser.add_argument("--batches", type=_ints, default=[1, 8, 64])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtypes", type=_dtypes, default=list(DTYPES))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--train_steps", type=int, default=20, help="0: no training timing")
    parser.add_argument("--train_batch", type=int, default=64)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None):
    from ghostnet_keras import cli

    args = parse_args(argv)
    cli.quiet(False)
    with cli.quiet_imports(False):
        import keras  # noqa: F401  (the backend's start-up lines stay hidden)

    results = measure(args, printer=lambda line: print(line, flush=True))
    text = markdown(args, results)
    print(text, end="")
    pathlib.Path(args.output).write_text(text)
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
