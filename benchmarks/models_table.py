"""Profiles every registry model at its default input size and prints a Markdown table.

Columns: trainable parameters, multiply-accumulates (the paper's "FLOPs") and activations
(elements of all conv/dense outputs) from ``ghostnet_keras.profile``, next to the paper's
numbers where the paper gives them. Models are built with their default arguments, so the
input size is the paper's: 224x224 for ImageNet models, 32x32 for the CIFAR-10 ones.

    PYTHONPATH=. python benchmarks/models_table.py [--filter SUBSTRING] [--output FILE]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Paper numbers: registry name -> (params M, FLOPs M, activations M or None, source).
# A registered model missing here is still profiled; its paper columns show "-".
PAPER = {  # name: (params M, FLOPs M, activations M, top-1 %, where in the paper)
    "ghostnet_050": (2.6, 42, None, 66.2, "Table 8"),
    "ghostnet_100": (5.2, 141, None, 73.9, "Table 8"),
    "ghostnet_130": (7.3, 226, None, 75.7, "Table 8"),
    "g_ghost_regnetx_032": (10.5, 1800, 8.7, 77.8, "Table 18"),
    "g_ghost_regnetx_040": (15.7, 2200, 9.5, 78.6, "Table 18"),
    "g_ghost_regnetx_080": (24.6, 4200, 10.4, 79.0, "Table 18"),
    "g_ghost_regnetx_160": (32.4, 9000, 19.5, 79.9, "Table 18"),
    "regnetx_032": (15.3, 3200, 11.4, 78.3, "Table 18"),
    "regnetx_040": (22.1, 4000, 12.2, 78.6, "Table 18"),
    "regnetx_080": (39.6, 8000, 14.1, 79.3, "Table 18"),
    "regnetx_160": (54.3, 15900, 25.5, 80.0, "Table 18"),
    "resnet34": (21.8, 3700, 3.7, 73.3, "Table 15"),
    "g_ghost_resnet34": (14.6, 2300, 3.3, 73.1, "Table 15"),
    "resnet50": (25.6, 4100, 11.1, 76.2, "Table 18"),
    "ghost_resnet50_s2": (13.0, 2200, None, 75.7, "Table 7"),
    "ghost_resnet50_s4": (6.5, 1200, None, 74.9, "Table 7"),
    "resnet56": (0.85, 125.0, None, 94.1, "Table 11 (CIFAR-10)"),
    "ghost_resnet56": (0.43, 63, None, 93.8, "Table 6 (CIFAR-10)"),
    "g_ghost_resnet56": (0.37, 53.8, None, 93.9, "Table 11 (CIFAR-10)"),
    "g_ghost_resnet56_nomix": (0.36, 53.7, None, 93.7, "Table 11 (CIFAR-10)"),
    "vgg16_cifar": (15.0, 313, None, 93.6, "Table 5 (CIFAR-10)"),
    "ghost_vgg16_cifar": (7.7, 158, None, 93.7, "Table 5 (CIFAR-10)"),
    # The successors' own papers (GhostNetV2, NeurIPS 2022, Table 2; GhostNetV3, 2024).
    "ghostnetv2_100": (None, 167, None, 75.3, "GhostNetV2 paper"),
    "ghostnetv2_130": (None, 269, None, 76.9, "GhostNetV2 paper"),
    "ghostnetv2_160": (None, 399, None, 77.8, "GhostNetV2 paper"),
    "ghostnetv3_100": (None, 167, None, 77.1, "GhostNetV3 paper"),
    "ghostnetv3_130": (None, 269, None, 79.1, "GhostNetV3 paper"),
}


def _fmt(value, digits):
    return "-" if value is None else f"{value:,.{digits}f}"


def models_table(names, progress=None):
    """Returns the Markdown table of ``names`` (registry names), profiling each model."""
    import keras

    import ghostnet_keras

    rows = [
        "| model | input | params (M) | MACs (M) | activations (M) | paper params (M) "
        "| paper FLOPs (M) | paper acts (M) | paper top-1 | source |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, name in enumerate(names, start=1):
        if progress:
            progress(f"[{i}/{len(names)}] {name}")
        # GhostNetV3 in its deployment form, the network the papers count (others: unchanged).
        model = ghostnet_keras.reparameterize(ghostnet_keras.create_model(name))
        stats = ghostnet_keras.profile(model)
        keras.backend.clear_session()
        params, flops, acts, top1, source = PAPER.get(name, (None, None, None, None, "-"))
        size = "x".join(str(d) for d in stats["input_shape"][:2])
        rows.append(
            f"| {name} | {size} | {stats['params'] / 1e6:.3f} | {stats['macs'] / 1e6:,.1f} "
            f"| {stats['activations'] / 1e6:.2f} | {_fmt(params, 2)} | {_fmt(flops, 1)} "
            f"| {_fmt(acts, 1)} | {_fmt(top1, 1)} | {source} |"
        )
    return "\n".join(rows) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default=None, help="only models whose name contains this")
    parser.add_argument("--output", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    import ghostnet_keras

    names = ghostnet_keras.list_models(args.filter)
    if not names:
        print(f"error: no registered model matches --filter {args.filter!r}", file=sys.stderr)
        return 2
    table = models_table(names, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table, end="")
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(table)
        except OSError as err:
            print(f"error: cannot write --output {args.output!r}: {err.strerror}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
