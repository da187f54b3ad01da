"""ImageNet weights: downloading, checking, converting, loading, listing.

Which models have published weights, and where they are, is data: the
:class:`~ghostnet_keras.catalog.PretrainedWeights` entries of :mod:`ghostnet_keras.catalog`
(URL, SHA-256, the top-1 its authors report, mean/std, crop fraction, the converter and the
builder variant the weights need), one per model row. This module acts on them: the first
``weights="imagenet"`` downloads the checkpoint (PyTorch or PaddlePaddle) with
``keras.utils.get_file``, checks it (SHA-256 where one is known, its structure always),
converts it with :mod:`ghostnet_keras.converters.convert` (PyTorch checkpoints need the
``convert`` extra; PaddlePaddle ones need nothing) and caches the Keras weights next to it,
so that later loads need nothing but Keras.

Two environment variables redirect the download, e.g. to a mirror or a local folder:
``GHOSTNET_KERAS_WEIGHTS_ORIGIN`` (a URL prefix, ``https://...`` or ``file:///...``, that
replaces the directory of every published URL) and ``KERAS_HOME`` (the cache root, read at
call time; default ``~/.keras``). Files go to ``$KERAS_HOME/models/``.

It sits above the registry: the model modules never import it (a builder with
``weights="imagenet"`` calls it lazily), and it imports no converter, PyTorch or
TensorFlow at import time.
"""

import hashlib
import os
import tempfile

from ghostnet_keras import catalog

ORIGIN_ENV = "GHOSTNET_KERAS_WEIGHTS_ORIGIN"
CACHE_SUBDIR = "models"
# Keras layers of the classification head, not loaded with ``include_top=False``.
HEAD_LAYERS = ("head", "head_bn", "classifier")


class WeightsDownloadError(OSError):
    """The published checkpoint could not be downloaded; the message says how to get it."""


def entries():
    """``{name: PretrainedWeights}`` of every published checkpoint; a name is a registry
    name (the default weights of that model) or ``name.tag`` (other weights of it)."""
    return catalog.weights_entries()


def get_entry(name):
    """The :class:`PretrainedWeights` of ``name`` (``model`` or ``model.tag``), or ``None``."""
    return entries().get(name)


def available_models():
    """Sorted names (``model`` and ``model.tag``) that have published ImageNet weights."""
    return sorted(entries())


def check_available(model_name):
    """Raises a ``ValueError`` unless ``model_name`` has published ImageNet weights."""
    if get_entry(model_name) is None:
        have = ", ".join(n for n in available_models() if "." not in n) or "none yet"
        raise ValueError(
            f"No ImageNet weights are published for {model_name!r}; models that have them: "
            f"{have}. Pass `weights=None` or the path to a converted `.weights.h5` file. "
            "Received: weights='imagenet'"
        )
    return get_entry(model_name)


def weights_table(models=None):
    """One row (a dict) per model: ``model``, ``weights`` (bool), ``top1``, ``source``,
    ``url``, ``sha256``, ``converter``, ``variant``, ``tags`` (other weights of it).

    ``models`` defaults to every registry model; models without weights get
    ``weights=False`` and ``None`` elsewhere. This is the listing the ``profile`` CLI and
    the README show.
    """
    if models is None:
        models = sorted(catalog.MODELS)
    table = entries()
    rows = []
    for name in models:
        entry = table.get(name)
        tags = sorted(n.split(".", 1)[1] for n in table if n.startswith(f"{name}."))
        rows.append(
            {
                "model": name,
                "weights": entry is not None,
                "top1": entry.top1 if entry else None,
                "source": entry.source if entry else None,
                "url": entry.url if entry else None,
                "sha256": (entry.expected_hashes or [None])[0] if entry else None,
                "converter": entry.converter if entry else None,
                "variant": entry.variant if entry else None,
                "tags": tags,
            }
        )
    return rows


def _print(message):
    print(message, flush=True)


def cache_dir():
    """The Keras cache root the weights go under (``$KERAS_HOME``, else ``~/.keras``),
    created if needed; a temporary folder when that is not writable, as
    ``keras.utils.get_file`` does."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    return base


def models_dir():
    """The folder downloads and converted weights are cached in (``$KERAS_HOME/models``)."""
    return os.path.join(cache_dir(), CACHE_SUBDIR)


def origin_url(entry):
    """The URL to download ``entry`` from: its own, or under ``$GHOSTNET_KERAS_WEIGHTS_ORIGIN``."""
    origin = os.environ.get(ORIGIN_ENV)
    if not origin:
        return entry.url
    return f"{origin.rstrip('/')}/{entry.file_name}"


def sha256_of_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_of(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path, entry):
    """Raises a ``ValueError`` if ``path`` does not match the digests of ``entry``."""
    expected = entry.expected_hashes
    if not expected:
        return
    actual = sha256_of(path)
    for prefix in expected:
        if not actual.startswith(prefix):
            raise ValueError(
                f"{path} is corrupt or not the published file: its SHA-256 is {actual}, "
                f"expected {prefix}{'...' if len(prefix) < 64 else ''}."
            )


def _kept(path, entry, err):
    """The error for a file that was in the cache before this call: it may be the user's
    own (the offline message tells users to put one there), so it is never deleted."""
    first, *rest = str(err).splitlines() or [type(err).__name__]
    return ValueError(
        "\n".join(
            [
                f"{first} The file was already in the cache, put there by hand or by an "
                f"earlier download, and is left as it is: replace it with {entry.url}, or "
                "remove it to have it downloaded.",
                *rest,
            ]
        )
    )


def converted_path(model_name, entry=None):
    """Where the converted Keras weights of ``model_name`` are cached."""
    entry = entry or check_available(model_name)
    stem = entry.file_name.split(".")[0]
    safe = model_name.replace(".", "_")
    return os.path.join(models_dir(), f"{stem}_keras_{safe}.weights.h5")


def _download(model_name, entry, force):
    import keras

    url = origin_url(entry)
    try:
        return keras.utils.get_file(
            fname=entry.file_name,
            origin=url,
            cache_dir=cache_dir(),
            cache_subdir=CACHE_SUBDIR,
            force_download=force,
        )
    except Exception as err:  # get_file raises a bare Exception for every network failure
        cause = getattr(err.__context__, "reason", None)  # get_file hides the URLError
        reason = " ".join(str(cause or err).split()) or type(err).__name__
        raise WeightsDownloadError(
            f"Cannot download the ImageNet weights of {model_name} from {url} ({reason}). "
            f"Without network access, put {entry.file_name} (from {entry.url}) into "
            f"{models_dir()} (the cache under $KERAS_HOME), or set ${ORIGIN_ENV} to a mirror "
            "or a local folder that holds it (e.g. file:///data/checkpoints/)."
        ) from None  # the cause is named in the message; its chain is 100 lines of urllib


def _fetch(model_name):
    """``(path, downloaded)``: the verified checkpoint of ``model_name``, and whether this
    call downloaded it (else it was in the cache already; see :func:`fetch_checkpoint`)."""
    entry = check_available(model_name)
    target = os.path.join(models_dir(), entry.file_name)
    if os.path.exists(target):
        try:
            verify_file(target, entry)
        except ValueError as err:
            raise _kept(target, entry, err) from None
        return target, False
    path = _download(model_name, entry, force=False)
    try:
        verify_file(path, entry)
    except ValueError as err:
        os.remove(path)  # this call's own download: the next call downloads it afresh
        raise ValueError(
            f"The downloaded {err} It has been deleted; try again, or check ${ORIGIN_ENV}."
        ) from None
    return path, True


def fetch_checkpoint(model_name):
    """Downloads (or finds in the cache) the checkpoint of ``model_name`` and verifies it.

    A download that fails the check is deleted and raises ``ValueError``. A file that was
    in the cache before (which may be one the user put there) is never deleted or
    overwritten: one that fails the check raises a ``ValueError`` saying what is wrong with
    it. A failed download raises :class:`WeightsDownloadError` (an ``OSError``) saying how
    to get the file offline.
    """
    return _fetch(model_name)[0]


def weights_file(model_name):
    """The path of the converted Keras weights of ``model_name`` (``model`` or
    ``model.tag``), downloading and converting them (once) if the cache lacks them.

    Example (the SSLD weights of GhostNet-1.3x, for the builder's ``weights=`` argument):
        path = ghostnet_keras.pretrained.weights_file("ghostnet_130.ssld")
    """
    check_available(model_name)
    target = converted_path(model_name)
    if not os.path.exists(target):
        _convert(model_name, target)
    return target


convert_imagenet_weights = weights_file


def _convert(model_name, target):
    entry = check_available(model_name)
    checkpoint, downloaded = _fetch(model_name)
    from ghostnet_keras.converters import convert

    if not entry.expected_hashes:
        _print(
            f"Note: no SHA-256 digest is published for {os.path.basename(checkpoint)}; it is "
            "checked by its structure (every tensor name and shape) only."
        )
    _print(f"Converting {checkpoint} to Keras weights (once): {target}")
    try:
        return convert.convert_checkpoint(
            checkpoint, model_name.split(".")[0], target, converter=entry.converter
        )
    except ValueError as err:  # truncated, corrupt or not this model
        if not downloaded:  # perhaps the user's own file: say what is wrong, delete nothing
            raise _kept(checkpoint, entry, err) from None
        os.remove(checkpoint)  # this call's own download: fetched afresh next time
        _print(f"Deleted the download {checkpoint}, which cannot be converted.")
        raise


def imagenet_model(model_name):
    """The full model (with the top) holding the ImageNet weights of ``model_name``."""
    entry = check_available(model_name)
    from ghostnet_keras.converters.convert import build_model

    target = converted_path(model_name)
    if os.path.exists(target):
        reference = build_model(model_name.split(".")[0], include_top=True, variant=entry.variant)
        from ghostnet_keras import weights_file

        try:
            weights_file.load(reference, target)  # every failure is one ValueError
            return reference
        except ValueError as err:  # damaged: our own conversion, redone (and replaced)
            _print(f"The cached {target} cannot be loaded ({err}); converting again.")
    return _convert(model_name, target)


def copy_weights(source, target, skip=()):
    """Copies weights from ``source`` to ``target`` layer by layer, matched by name.

    Every layer of ``source`` with weights (except those named in ``skip``) must be in
    ``target`` with the same shapes. Layers of ``target`` that ``source`` lacks (e.g. of a
    graph upstream of ``input_tensor``) are left as they are.
    """
    by_name = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        if not layer.weights or layer.name in skip:
            continue
        other = by_name.get(layer.name)
        if other is None:
            raise ValueError(f"Model {target.name!r} has no layer {layer.name!r} to load into.")
        values = layer.get_weights()
        shapes = [tuple(w.shape) for w in other.weights]
        if shapes != [v.shape for v in values]:
            raise ValueError(
                f"Layer {layer.name!r} of {target.name!r} has weights of shapes {shapes}; "
                f"the ImageNet weights have {[v.shape for v in values]}."
            )
        other.set_weights(values)


def load_imagenet_weights(model, model_name, include_top=True):
    """Loads the published ImageNet weights of ``model_name`` into ``model``.

    With ``include_top=False`` everything but the head (``HEAD_LAYERS``) is loaded, as in
    keras.applications; with the top, the model must have the weights' 1000 classes.
    """
    reference = imagenet_model(model_name)
    copy_weights(reference, model, skip=() if include_top else HEAD_LAYERS)


def markdown_table(rows=None):
    """The weights listing as a Markdown table (the README's): model, weights, top-1, source."""
    rows = weights_table() if rows is None else rows
    lines = ["| model | ImageNet weights | top-1 reported | source |", "|---|---|---:|---|"]
    table = entries()
    for row in rows:
        if not row["weights"]:
            lines.append(f"| `{row['model']}` | - | - | - |")
            continue
        lines.append(
            f'| `{row["model"]}` | `weights="imagenet"` | {row["top1"]} | {row["source"]} |'
        )
        for tag in row["tags"]:
            key = f"{row['model']}.{tag}"
            lines.append(
                f'| `{row["model"]}` | `weights=pretrained.weights_file("{key}")` | '
                f"{table[key].top1} | {table[key].source} |"
            )
    return "\n".join(lines)


def main(argv=None):
    """``python -m ghostnet_keras.pretrained [--all]``: the models with ImageNet weights."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ghostnet_keras.pretrained",
        description="List the models with published ImageNet weights and their reported top-1.",
    )
    parser.add_argument("--all", action="store_true", help="list models without weights too")
    args = parser.parse_args(argv)
    import sys

    from ghostnet_keras import cli, extras

    try:
        with cli.quiet_imports():
            extras.require_keras("listing the models")
    except extras.MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = [row for row in weights_table() if args.all or row["weights"]]
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
