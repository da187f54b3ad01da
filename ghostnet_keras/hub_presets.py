"""Writes a keras-hub preset folder for every model with published ImageNet weights.

    python -m ghostnet_keras.hub_presets --output=presets
    python -m ghostnet_keras.hub_presets --output=presets --models=ghostnet_100,g_ghost_regnetx_032

Each folder (``<output>/<name>``, a weights name's ``.`` as ``_``: ``ghostnet_130_ssld``) holds
the image classifier of :mod:`ghostnet_keras.hub` with its backbone, head and preprocessor
(the weights entry's mean, std, crop and input size), saved with keras-hub's
``save_to_preset`` from the weights of ``create_model(name, weights="imagenet")`` (downloaded,
checked and converted as that does). After ``import ghostnet_keras.hub``,
``keras_hub.models.Backbone.from_preset(folder)`` and
``keras_hub.models.ImageClassifier.from_preset(folder)`` load it; docs/keras-hub.md says how to
upload the folders to Kaggle or Hugging Face.
"""

import os
import sys

from ghostnet_keras import catalog, cli, extras


def preset_names(models=None):
    """The weights names to write presets of: ``models`` (a list) checked against the
    catalogue's published weights, or all of them."""
    published = sorted(catalog.weights_entries())
    if models is None:
        return published
    unknown = [m for m in models if m not in published]
    if unknown or not models:
        raise ValueError(
            f"`models` must be names with published weights ({', '.join(published)}). "
            f"Received: models={','.join(unknown) if models else ''!r}"
        )
    return list(dict.fromkeys(models))


def preset_dir(output, name):
    """The folder of ``name``'s preset under ``output``."""
    return os.path.join(output, name.replace(".", "_"))


def write_presets(output, models=None, log=print):
    """Writes the preset of each weights name of ``models`` (default: all) under ``output``;
    returns ``{name: folder}``. ``log`` gets one line per model."""
    names = preset_names(models)
    from ghostnet_keras import hub  # Keras and keras-hub: after the arguments are checked

    written = {}
    for index, name in enumerate(names, 1):
        classifier = hub.classifier_from_registry(name, weights="imagenet")
        folder = preset_dir(output, name)
        classifier.save_to_preset(folder)
        written[name] = folder
        log(
            f"[{index}/{len(names)}] {name}: {type(classifier).__name__} "
            f"({classifier.count_params():,} parameters) -> {folder}"
        )
    return written


def main(argv=None):
    parser = cli.OneLineParser(
        prog="python -m ghostnet_keras.hub_presets",
        description="Write keras-hub preset folders of the models with ImageNet weights.",
    )
    parser.add_argument("--output", required=True, help="folder to write one preset folder in")
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated weights names (default: every model with published weights)",
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up lines")
    args = parser.parse_args(argv)
    try:
        models = None if args.models is None else [m.strip() for m in args.models.split(",")]
        preset_names(models)  # bad names fail before Keras loads
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise ValueError(
                f"`--output` is a file, not a folder. Received: --output={args.output}"
            )
        with cli.quiet_imports(args.verbose):
            extras.require_keras("writing keras-hub presets")
            extras.require("keras_hub", "hub", "writing keras-hub presets")
        write_presets(args.output, models, log=lambda line: print(line, flush=True))
    except (ValueError, ImportError, OSError) as err:
        print(f"error: {cli.error_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
