"""Training throughput: the input pipeline alone next to the training step of C-GhostNet-1.0
and keras.applications.MobileNetV3Large, at 224x224, in one run.

Measured, interleaved (one round of each per repeat, in an order rotating from repeat to
repeat; median over repeats):

- pipeline (cached): `ghostnet_keras.data.make_dataset` on the Imagenette folder with training
  augmentation (random-resized crop to 224, flip, colour jitter), as `train.py` builds it; this
  small data set is decoded once and cached in memory (the automatic choice under 1 GB).
- pipeline (no cache): the same without the cache: every image is read, crop-decoded and
  augmented each time, as for ImageNet.
- GhostNet100 / MobileNetV3Large step: `train_on_batch` on real batches already in memory
  (8, cycled; 1000 classes, SGD with momentum, cross-entropy with label smoothing 0.1).
- GhostNet100 fed by the pipeline: the same step taking each batch from the uncached pipeline,
  which shares the CPU with the step.

    PYTHONPATH=. python benchmarks/train_throughput.py [--batch_size 32] [--repeats 5]
        [--steps 4] [--jit_compile auto|true|false] [--data PATH] [--output FILE [--append]]
"""

import argparse
import gc
import itertools
import os
import pathlib
import statistics
import sys
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = ROOT.parent / "shared" / "datasets" / "imagenette-160-subset.tgz"
CACHE = pathlib.Path.home() / ".cache" / "ghostnet-keras-tests"


def imagenette_folder(path=None):
    """The Imagenette folder: ``path``, or the shared archive unpacked to the test cache."""
    if path:
        return pathlib.Path(path)
    target = CACHE / "imagenette-160-subset"
    if not (target / ".unpacked").exists():
        if not SHARED_ARCHIVE.exists():
            raise SystemExit(f"error: {SHARED_ARCHIVE} is missing; pass --data PATH")
        print(f"Unpacking {SHARED_ARCHIVE} to {target}", file=sys.stderr)
        with tarfile.open(SHARED_ARCHIVE) as tar:
            tar.extractall(target, filter="data")
        (target / ".unpacked").touch()
    return target / "imagenette-160"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per repeat")
    parser.add_argument("--pipeline_batches", type=int, default=40, help="batches per repeat")
    parser.add_argument("--jit_compile", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--data", default=None, help="an image folder (train/<class>/*)")
    parser.add_argument("--output", default=None, help="also write the Markdown results here")
    parser.add_argument("--append", action="store_true", help="add to --output, not replace")
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    import ghostnet_keras
    from ghostnet_keras import data

    folder = imagenette_folder(args.data)
    spec = f"folder:{folder}"
    size, batch = args.image_size, args.batch_size
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    def pipeline(cache):
        return data.make_dataset(
            spec,
            "train",
            training=True,
            batch_size=batch,
            image_size=size,
            seed=0,
            cache=cache,
            num_classes=1000,
        )

    def model(name):
        keras.utils.set_random_seed(0)
        if name == "GhostNet100":
            net = ghostnet_keras.GhostNet100(input_shape=(size, size, 3))
        else:
            net = keras.applications.MobileNetV3Large(
                input_shape=(size, size, 3), weights=None, include_preprocessing=True
            )
        net.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
            jit_compile=jit,
        )
        return net

    print(f"Pipelines on {folder}, models at batch {batch}, {size}x{size}", file=sys.stderr)
    pipelines = {"cached": pipeline(None), "no cache": pipeline(False)}
    epoch = -(-data.dataset_info(spec).num_train_examples // batch)
    models = {name: model(name) for name in ("GhostNet100", "MobileNetV3Large")}
    # Steps "from memory" cycle through a few real batches held in memory. (Repeating one batch
    # is not neutral: as the model fits it, the step gets measurably slower.)
    batches = [b for b, _ in zip(pipelines["cached"], range(8), strict=False)]
    x, y = batches[0]
    for name, net in models.items():  # build and compile outside the timing
        for _ in range(2):
            net.train_on_batch(x, y)
        print(f"  {name}: jit_compile={net.jit_compile}", file=sys.stderr)

    # A pipeline's iterator lives only while it is measured: no background prefetching steals
    # the CPU from the steps measured after it.
    def time_pipeline(ds):
        it = iter(ds)
        for _ in range(epoch):  # fills the cache, the prefetch buffers and the autotuner
            next(it)
        start = time.perf_counter()
        for _ in range(args.pipeline_batches):
            next(it)
        rate = args.pipeline_batches * batch / (time.perf_counter() - start)
        del it
        gc.collect()
        time.sleep(1.0)  # let the cancelled pipeline threads wind down
        return rate

    def time_step(net, ds=None):
        it = itertools.cycle(batches) if ds is None else iter(ds)
        for _ in range(2):  # the same warm-up for both: the first step after a pause is slow
            net.train_on_batch(*next(it))
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = net.train_on_batch(*next(it))
        float(np.asarray(loss))
        rate = args.steps * batch / (time.perf_counter() - start)
        if ds is not None:
            del it
            gc.collect()
            time.sleep(1.0)
        return rate

    rounds = [
        ("pipeline (cached)", lambda: time_pipeline(pipelines["cached"])),
        ("pipeline (no cache)", lambda: time_pipeline(pipelines["no cache"])),
        ("GhostNet100 step", lambda: time_step(models["GhostNet100"])),
        ("MobileNetV3Large step", lambda: time_step(models["MobileNetV3Large"])),
        (
            "GhostNet100 step fed by the pipeline (no cache)",
            lambda: time_step(models["GhostNet100"], pipelines["no cache"]),
        ),
    ]
    rates = {}
    for name, _ in rounds:
        rates[name] = []
    for repeat in range(args.repeats):
        # The order rotates from repeat to repeat, so that no measurement always runs right
        # after the same other one (e.g. a pipeline whose threads are still winding down).
        shift = repeat % len(rounds)
        for name, run in rounds[shift:] + rounds[:shift]:
            rates[name].append(run())
        print(
            f"  repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()),
            file=sys.stderr,
        )

    median = {k: statistics.median(v) for k, v in rates.items()}
    ratios = [
        ("GhostNet100 step / MobileNetV3Large step", "GhostNet100 step", "MobileNetV3Large step"),
        ("pipeline (cached) / GhostNet100 step", "pipeline (cached)", "GhostNet100 step"),
        ("pipeline (no cache) / GhostNet100 step", "pipeline (no cache)", "GhostNet100 step"),
        (
            "pipeline (no cache) / MobileNetV3Large step",
            "pipeline (no cache)",
            "MobileNetV3Large step",
        ),
        (
            "GhostNet100 fed by the pipeline / from memory",
            "GhostNet100 step fed by the pipeline (no cache)",
            "GhostNet100 step",
        ),
    ]
    lines = [
        f"Batch {batch}, {size}x{size}, 1000 classes, SGD momentum, label smoothing 0.1, "
        f"jit_compile={models['GhostNet100'].jit_compile}; median of {args.repeats} interleaved "
        f"repeats ({args.steps} steps / {args.pipeline_batches} pipeline batches each); "
        f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores.",
        "",
        "| measured | images/s (median) | min | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rates.items():
        lines.append(f"| {name} | {median[name]:.1f} | {min(values):.1f} | {max(values):.1f} |")
    lines += [
        "",
        "Ratios: median over the repeats of the ratio within each repeat.",
        "",
        "| ratio | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for label, top, bottom in ratios:
        values = [a / b for a, b in zip(rates[top], rates[bottom], strict=True)]
        lines.append(
            f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.output:
        command = "PYTHONPATH=. python benchmarks/train_throughput.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        path = pathlib.Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# Training throughput\n\n"
            "Input pipeline (`ghostnet_keras/data`, training augmentation, Imagenette folder at "
            "224x224) next to the training step of C-GhostNet-1.0 and MobileNetV3Large. The "
            "machine (2 CPU cores) is shared with other jobs and noisy: absolute images/s vary "
            "from run to run and even within one (see min/max); the ratios of interleaved runs "
            "are what to compare.\n"
        )
        old = path.read_text() if args.append and path.exists() else header
        section = (
            f"\n## jit_compile={args.jit_compile}\n\nCommand: `{command.strip()}`\n\n{table}\n"
        )
        path.write_text(old + section)
        print(f"Wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
