"""The TFLite latency table and plot: C-GhostNet beside the keras.applications MobileNets.

    python benchmarks/tflite_latency.py --calibration_data=folder:PATH/imagenette-160 \\
        --runs=300 --output=benchmarks/results/tflite_latency.md --plot=docs/latency.png

``--models`` picks the registry models timed beside the MobileNets (default: the three
C-GhostNets), e.g. ``--models=ghostnet_100,ghostnetv2_100,ghostnetv3_100``; GhostNetV3 is
timed as deployed (reparameterized, as ``tflite.convert`` converts it).

Every model is converted the same way (``tflite.benchmark.convert_for_benchmark``: the
export-graph rewrites, the project's converter, the flatbuffer rewrites) for
each quantization, with int8 calibrated on the same real images; C-GhostNet-1.0 is also
converted without the rewrites ("naive") and with them added one at a time, to show what
each buys. All models of all quantizations are timed in ONE interleaved session (single
thread, batch 1, LiteRT + XNNPACK): medians and ratios to MobileNetV2-1.0 of the same
quantization. The header names the CPU's SIMD extensions: the ratios depend on them.
"""

import argparse
import collections
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ghostnet_keras import files  # noqa: E402

GHOSTNETS = ("ghostnet_050", "ghostnet_100", "ghostnet_130")
# Everything from this line on in an existing results file is kept (hand-written notes).
NOTES_MARKER = "<!-- notes: kept when the table is regenerated -->"


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration_data", required=True, help="folder:PATH or a TFDS name")
    parser.add_argument("--num_calibration", type=int, default=100)
    parser.add_argument("--quantize", default="none,int8", help="comma list")
    parser.add_argument(
        "--models",
        default=",".join(GHOSTNETS),
        help="comma list of registry models timed beside the MobileNets",
    )
    parser.add_argument(
        "--ablation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with ghostnet_100 in --models: its rows with the rewrites added one at a time",
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--output", default=None, help="Markdown results file")
    parser.add_argument("--plot", default=None, help="PNG of top-1 and MACs against latency")
    parser.add_argument(
        "--save_dir", default=None, help="keep the converted .tflite files and rows.json here"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="time the files of --save_dir again, no conversion"
    )
    return parser.parse_args(argv)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from tflite.benchmark import published_top1

    labels = {
        "ghostnet_050": "C-GhostNet-0.5",
        "ghostnet_100": "C-GhostNet-1.0",
        "ghostnet_130": "C-GhostNet-1.3",
        "ghostnetv2_100": "GhostNetV2-1.0",
        "ghostnetv3_100": "GhostNetV3-1.0",
        "mobilenet_v2_100": "MobileNetV2-1.0",
        "mobilenet_v3_large_075": "MobileNetV3-L-0.75",
        "mobilenet_v3_large_100": "MobileNetV3-L-1.0",
    }
    styles = {"none": ("o", "float32"), "int8": ("s", "int8")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, ylabel in (
        (axes[0], "top1", "ImageNet top-1 (%, published)"),
        (axes[1], "macs", "multiply-adds (M)"),
    ):
        for quantize, (marker, qlabel) in styles.items():
            for family, color in (
                ("ghostnet_", "tab:red"),
                ("ghostnetv", "tab:green"),
                ("mobilenet", "tab:blue"),
            ):
                pts = [
                    r
                    for r in rows
                    if r["quantize"] == quantize
                    and r["model"].startswith(family)
                    and r["model"] in labels
                ]
                if not pts:
                    continue
                pts.sort(key=lambda r: r["p10"])
                xs = [r["p10"] for r in pts]
                ys = [published_top1(r["model"]) if key == "top1" else r["macs"] / 1e6 for r in pts]
                name = {"ghostnet_": "C-GhostNet", "ghostnetv": "GhostNetV2/V3"}.get(
                    family, "MobileNet V2/V3"
                )
                ax.plot(
                    xs,
                    ys,
                    marker=marker,
                    color=color,
                    linestyle="-" if family == "ghostnet_" else "none",
                    fillstyle="full" if quantize == "int8" else "none",
                    label=f"{name}, {qlabel}",
                )
                for r, x, y in zip(pts, xs, ys, strict=True):
                    ax.annotate(
                        labels[r["model"]],
                        (x, y),
                        fontsize=7,
                        xytext=(4, 3) if quantize != "int8" else (-4, -9),
                        ha="left" if quantize != "int8" else "right",
                        textcoords="offset points",
                    )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 1.5, 2, 3, 4, 6, 8, 12]))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("latency (ms, log scale; 10th percentile, 1 thread, batch 1, XNNPACK, x86)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    from tflite.benchmark import cpu_description

    fig.suptitle(
        "GhostNets vs keras.applications MobileNets: same converter, same run\n" + cpu_description()
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _rewrite_variants(quantize):
    """C-GhostNet-1.0 with the default rewrites added one at a time, then each opt-in one.

    The defaults (``tflite.optimize.DEFAULT_REWRITES``) are the "ghostnet_100" row; the
    rows here show what each step buys, cumulatively, then what each of the two rewrites
    that measurements rejected (``tflite_rewrites.REJECTED``) adds to them.
    """
    from benchmarks.tflite_rewrites import REJECTED
    from tflite import optimize

    steps = [("stem",), ("stem", "gate")]
    variants = [("ghostnet_100 (naive)", "ghostnet_100", {"optimize": False})]
    for rewrites in steps:
        label = "ghostnet_100 +" + " +".join(rewrites)
        variants.append((label, "ghostnet_100", {"rewrites": rewrites, "float_softmax": False}))
    if quantize == "int8":
        variants.append(
            ("ghostnet_100 +stem +gate +softmax", "ghostnet_100", {"rewrites": ("stem", "gate")})
        )
    defaults = optimize.DEFAULT_REWRITES
    for extra in ("concat_conv", "ghost"):
        rewrites = (*defaults, REJECTED[extra])
        variants.append((f"ghostnet_100 default +{extra}", "ghostnet_100", {"rewrites": rewrites}))
    return variants


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)

    from tflite import benchmark

    quantizations = [q.strip() for q in args.quantize.split(",") if q.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    import ghostnet_keras

    unknown = [m for m in models if m not in ghostnet_keras.list_models()]
    if unknown or not models:
        raise SystemExit(
            "error: --models takes registry names (ghostnet_keras.list_models()). "
            f"Received: models={args.models!r}"
        )
    if args.reuse:
        if not args.save_dir:
            raise SystemExit("error: --reuse needs --save_dir. Received: save_dir=None")
        with open(os.path.join(args.save_dir, "rows.json")) as f:
            rows = json.load(f)
        flatbuffers = {}
        for i, row in enumerate(rows):
            with open(os.path.join(args.save_dir, f"{i:02d}.tflite"), "rb") as f:
                flatbuffers[i] = f.read()
            row["delegation"]["not_delegated"] = collections.Counter(
                row["delegation"]["not_delegated"]
            )
        return _time_and_report(args, argv, rows, flatbuffers)
    calibration = None
    if "int8" in quantizations:
        calibration = benchmark._calibration_images(
            args.calibration_data, args.num_calibration, 224
        )
        print(f"Calibration: {len(calibration)} images of {args.calibration_data}", flush=True)
    rows, flatbuffers = [], {}
    for quantize in quantizations:
        variants = [(p, p, {}) for p in (*benchmark.PEERS, *models)]
        if args.ablation and quantize in ("none", "int8") and "ghostnet_100" in models:
            variants += _rewrite_variants(quantize)
        for label, name, options in variants:
            print(f"Converting {label} ({quantize})...", flush=True)
            model = benchmark._keras_model(name)
            flatbuffer = benchmark.convert_for_benchmark(
                model,
                quantize,
                calibration=calibration if quantize == "int8" else None,
                **options,
            )
            row = benchmark._row(name, quantize, flatbuffer, model)
            row["label"] = label
            row.pop("flatbuffer")
            row.pop("flatbuffer_for_profile")
            row.pop("census")
            flatbuffers[len(rows)] = flatbuffer
            rows.append(row)
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
        for i, flatbuffer in flatbuffers.items():
            files.write_bytes(os.path.join(args.save_dir, f"{i:02d}.tflite"), flatbuffer)
        files.write_json(os.path.join(args.save_dir, "rows.json"), rows)
    return _time_and_report(args, argv, rows, flatbuffers)


def _time_and_report(args, argv, rows, flatbuffers):
    import numpy as np

    from tflite import benchmark, latency

    print(f"Timing {len(rows)} models, {args.runs} interleaved rounds...", flush=True)
    times = latency.measure_latency(flatbuffers, runs=args.runs, warmup=args.warmup, progress=print)
    for i, row in enumerate(rows):
        row["ms"] = float(np.median(times[i]))
        row["p10"] = float(np.percentile(times[i], 10))
    if args.save_dir:
        files.write_json(os.path.join(args.save_dir, "timed.json"), rows)
    table_rows = [{**r, "model": r["label"]} for r in rows]
    table = benchmark.format_table(table_rows)
    print(table)
    if args.output:
        command = "python benchmarks/tflite_latency.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        notes = ""
        if os.path.exists(args.output):
            with open(args.output) as f:
                old = f.read()
            if NOTES_MARKER in old:
                notes = old[old.index(NOTES_MARKER) :]
        files.write_bytes(
            args.output,
            (
                f"# TFLite latency\n\n```\n{command}\n```\n\n"
                f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
                f"{benchmark.cpu_description()}, {os.cpu_count()} cores, load average at the end "
                f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n\n{table}\n\n{notes}"
            ).encode(),
        )
    if args.plot:
        plot([r for r in rows if r["label"] == r["model"]], args.plot)
        print(f"Plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
