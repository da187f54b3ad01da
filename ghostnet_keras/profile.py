"""Command line: profile registry models in the paper's columns, optionally run an image.

python -m ghostnet_keras.profile ghostnet_100
python -m ghostnet_keras.profile ghostnet_050 ghostnet_100 --input_size=320
python -m ghostnet_keras.profile all
python -m ghostnet_keras.profile ghostnet_100 --image=cat.jpg --weights=PATH.weights.h5
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m ghostnet_keras.profile",
        description="Parameters, multiply-adds and activations of registry models.",
    )
    parser.add_argument("models", nargs="+", help="registry names, or 'all'")
    parser.add_argument("--input_size", type=int, default=None, help="square input side")
    parser.add_argument("--image", help="run this image through the (first) model, print top-5")
    parser.add_argument("--weights", default=None, help="None, 'imagenet' or a weights file")
    return parser.parse_args(argv)


def _table(rows):
    lines = [
        "| model | input | params | MACs | activations |",
        "|---|---|---:|---:|---:|",
    ]
    for name, p in rows:
        size = "x".join(str(d) for d in p["input_shape"][:2])
        lines.append(
            f"| {name} | {size} | {p['params']:,} | {p['macs'] / 1e6:,.1f}M "
            f"| {p['activations'] / 1e6:,.2f}M |"
        )
    return "\n".join(lines)


def _predict(model, image_path):
    import numpy as np
    from PIL import Image

    import ghostnet_keras

    size = model.input_shape[1] or 224
    with Image.open(image_path) as img:
        img = img.convert("RGB").resize((size, size), Image.BICUBIC)
    x = np.asarray(img, dtype="float32")[None]
    preds = model.predict(x, verbose=0)
    if preds.shape[-1] in (1000, 1001):
        return [
            f"{wnid} {label}: {p:.4f}"
            for wnid, label, p in ghostnet_keras.decode_predictions(preds)[0]
        ]
    best = np.argsort(preds[0])[::-1][:5]
    return [f"class {i}: {preds[0, i]:.4f}" for i in best]


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    import ghostnet_keras

    try:
        names = ghostnet_keras.list_models() if args.models == ["all"] else args.models
        for name in names:
            ghostnet_keras.registry.get_builder(name)
        if args.image and not os.path.isfile(args.image):
            raise ValueError(f"No such image file. Received: --image={args.image!r}")
        rows = []
        first = None
        for name in names:
            model = ghostnet_keras.create_model(name, weights=args.weights)
            first = first or model
            rows.append((name, ghostnet_keras.profile(model, args.input_size)))
            print(_table(rows[-1:]).splitlines()[-1] if len(rows) > 1 else _table(rows), flush=True)
        if args.image:
            print(f"\nTop-5 of {names[0]} (weights={args.weights}) for {args.image}:")
            for line in _predict(first, args.image):
                print(f"  {line}")
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
