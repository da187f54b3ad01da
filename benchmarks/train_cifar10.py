"""Trains a C-GhostNet on the real CIFAR-10 JPEG folder with `python -m training.train` and
records test accuracy and wall time in `benchmarks/results/train_cifar10.md`.

The archive `../shared/datasets/cifar10-jpeg.tgz` (`train|test/<class>/*.jpg`, 32x32, 50,000 +
10,000 images) is unpacked once to `~/.cache/ghostnet-keras-bench/cifar10-jpeg`.

    python benchmarks/train_cifar10.py                      # the recorded run
    python benchmarks/train_cifar10.py --epochs=1 --model=ghostnet_050   # quicker

Everything after the script's own flags is passed to `training.train` unchanged.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tarfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCHIVE = pathlib.Path(
    os.environ.get("GHOSTNET_SHARED_DIR", ROOT.parent / "shared"), "datasets", "cifar10-jpeg.tgz"
)
CACHE = pathlib.Path.home() / ".cache" / "ghostnet-keras-bench"
RESULTS = ROOT / "benchmarks" / "results" / "train_cifar10.md"


def unpack(archive=ARCHIVE, cache=CACHE):
    """Unpacks the archive into `cache/cifar10-jpeg` once; returns that folder."""
    target = cache / "cifar10-jpeg"
    if not (target / ".unpacked").exists():
        if not archive.exists():
            sys.exit(f"train_cifar10: error: {archive} is missing (the shared CIFAR-10 archive)")
        print(f"Unpacking {archive} to {target} ...", flush=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        (target / ".unpacked").touch()
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ghostnet_100")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=0.2)
    parser.add_argument("--model_dir", default=str(CACHE / "runs" / "train_cifar10"))
    parser.add_argument("--results", default=str(RESULTS))
    args, extra = parser.parse_known_args()

    data = unpack()
    command = [
        sys.executable,
        "-m",
        "training.train",
        f"--dataset=folder:{data}",
        f"--model={args.model}",
        "--image_size=32",
        f"--batch_size={args.batch_size}",
        f"--epochs={args.epochs}",
        f"--learning_rate={args.learning_rate}",
        "--warmup_epochs=1",
        "--eval_every=0",
        "--log_every=50",
        "--save_every=200",
        "--seed=0",
        f"--model_dir={args.model_dir}",
        *extra,
    ]
    print("Running:", shlex.join(command), flush=True)
    load_before = os.getloadavg()
    started = time.time()
    result = subprocess.run(command, cwd=ROOT)
    wall = time.time() - started
    if result.returncode:
        sys.exit(f"train_cifar10: error: training failed (exit {result.returncode})")
    metrics = json.loads((pathlib.Path(args.model_dir) / "metrics.json").read_text())
    shown = " ".join(
        [
            "python",
            "-m",
            "training.train",
            *[c.replace(str(data), "$DATA").replace(args.model_dir, "$RUN") for c in command[3:]],
        ]
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    invoked = " ".join(["python benchmarks/train_cifar10.py", *sys.argv[1:]])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    schedule = (
        f"{metrics['epochs']} epochs x {metrics['steps_per_epoch']} steps = "
        f"{metrics['steps']} steps, global batch {args.batch_size}"
    )
    machine = (
        f"{os.cpu_count()} CPU cores, {platform.machine()}, Python "
        f"{platform.python_version()}; shared with other jobs (load average "
        f"{load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end)"
    )
    report = f"""# C-GhostNet trained on CIFAR-10 (real JPEG folder, CPU)

Recorded by `{invoked}` on {when} (code at commit {commit or "unknown"}).

| | |
|---|---|
| model | {metrics["model"]} (C-GhostNet, 10 classes, 32x32 input) |
| data | CIFAR-10 JPEG folder: 50,000 training / {metrics["eval_examples"]:,} test images |
| training | {schedule} |
| test accuracy (top-1) | **{100 * metrics["accuracy"]:.2f}%** |
| test top-5 | {100 * metrics["top5_accuracy"]:.2f}% |
| test loss | {metrics["loss"]:.4f} |
| wall time (whole command) | {wall / 60:.1f} min ({wall:.0f} s) |
| training throughput | {metrics["train_images_per_second"]:.0f} images/s |
| machine | {machine} |

The command (`$DATA`: the unpacked `cifar10-jpeg` folder, `$RUN`: the model directory):

```
{shown}
```

Settings other than those flags are the defaults of `training/recipes.py`: SGD with Nesterov
momentum 0.9, linear warm-up then cosine decay to 0, weight decay 4e-5 on the kernels, label
smoothing 0.1, dropout 0.2; the augmentation of `ghostnet_keras.data` for small inputs (4-pixel
padded random 32x32 crops, flips), evaluation on the whole test image. This is a short CPU
run to show that the pipeline learns real data end to end, not a reproduction of the paper's
CIFAR-10 numbers (those use `--recipe=cifar10`: 164 epochs).
"""
    path = pathlib.Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report)
    print(report)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
