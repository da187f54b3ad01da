"""ImageNet weights: which models have them, and loading them.

``PRETRAINED`` maps a registry name to where its published weights come from.
The published weights are PyTorch checkpoints; the first ``weights="imagenet"``
downloads one with ``keras.utils.get_file``, checks its integrity, converts it
with :mod:`ghostnet_keras.convert_weights` (this step needs PyTorch: ``pip install
"ghostnet-keras[convert]"``) and caches the Keras weights next to it, so that
later loads need nothing but Keras.

Two environment variables redirect the download, e.g. to a mirror or a local
folder: ``GHOSTNET_KERAS_WEIGHTS_ORIGIN`` (a URL prefix, ``https://...`` or
``file:///...``, that replaces the directory of every published URL) and
``KERAS_HOME`` (the cache root, read at call time; default ``~/.keras``). Files
go to ``$KERAS_HOME/models/``.
"""

import dataclasses
import hashlib
import os
import re
import tempfile
import urllib.parse

ORIGIN_ENV = "GHOSTNET_KERAS_WEIGHTS_ORIGIN"
CACHE_SUBDIR = "models"


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """Where the published weights of one model come from.

    Attributes:
        url: the PyTorch checkpoint of the official release.
        sha256: its SHA-256 digest, in full or a prefix of at least 8 hex digits,
            or ``None`` when none is published. A file name of the PyTorch hub form
            ``name-<hex>.pth`` carries such a prefix too, and is checked as well.
        top1: the ImageNet-1k top-1 accuracy (%) its authors report.
    """

    url: str
    sha256: str | None = None
    top1: float | None = None

    @property
    def file_name(self):
        return os.path.basename(urllib.parse.urlsplit(self.url).path)

    @property
    def expected_hashes(self):
        """The SHA-256 digests or prefixes the downloaded file must match."""
        hashes = [self.sha256.lower()] if self.sha256 else []
        match = re.search(r"-([0-9a-f]{8,64})\.[^.]+$", self.file_name)
        if match:
            hashes.append(match.group(1))
        return hashes


PRETRAINED = {
    # The official PyTorch release of C-GhostNet 1.0x (73.98% top-1); the URL is the one
    # timm's `ghostnet_100` config names, and timm's `ghostnet_100.in1k` holds the same
    # tensors. The release publishes no checksum and its file name carries no hash
    # prefix, so the file is checked by its structure (every tensor name and shape must
    # match) until a digest is recorded here.
    "ghostnet_100": PretrainedWeights(
        url="https://github.com/huawei-noah/CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth",
        sha256=None,
        top1=73.98,
    ),
}


def check_available(model_name):
    """Raises a ``ValueError`` unless ``model_name`` has published ImageNet weights."""
    if model_name not in PRETRAINED:
        have = ", ".join(sorted(PRETRAINED)) or "none yet"
        raise ValueError(
            f"No ImageNet weights are published for {model_name!r}; models that have them: "
            f"{have}. Pass `weights=None` or the path to a converted `.weights.h5` file. "
            "Received: weights='imagenet'"
        )


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
                f"The downloaded file {path} is corrupt or not the published one: its SHA-256 "
                f"is {actual}, expected {prefix}{'...' if len(prefix) < 64 else ''}. "
                "It has been deleted; try again, or check $" + ORIGIN_ENV + "."
            )


def converted_path(model_name, entry=None):
    """Where the converted Keras weights of ``model_name`` are cached."""
    entry = entry or PRETRAINED[model_name]
    stem = entry.file_name.split(".")[0]
    return os.path.join(cache_dir(), CACHE_SUBDIR, f"{stem}_keras_{model_name}.weights.h5")


def fetch_checkpoint(model_name):
    """Downloads (or finds in the cache) the checkpoint of ``model_name`` and verifies it.

    A cached copy that fails the check is downloaded again once; a download that
    fails it is deleted and raises ``ValueError``.
    """
    import keras

    check_available(model_name)
    entry = PRETRAINED[model_name]

    def download(force):
        return keras.utils.get_file(
            fname=entry.file_name,
            origin=origin_url(entry),
            cache_dir=cache_dir(),
            cache_subdir=CACHE_SUBDIR,
            force_download=force,
        )

    target = os.path.join(cache_dir(), CACHE_SUBDIR, entry.file_name)
    was_cached = os.path.exists(target)
    path = download(force=False)
    try:
        verify_file(path, entry)
    except ValueError:
        if not was_cached:
            os.remove(path)
            raise
        _print(f"The cached {path} fails its SHA-256 check; downloading it again.")
        path = download(force=True)
        try:
            verify_file(path, entry)
        except ValueError:
            os.remove(path)
            raise
    return path


def convert_imagenet_weights(model_name):
    """Returns the path of the converted Keras weights of ``model_name``, converting
    them (once) from the published checkpoint if the cache does not have them yet."""
    check_available(model_name)
    target = converted_path(model_name)
    if not os.path.exists(target):
        _convert(model_name, target)
    return target


def _convert(model_name, target):
    checkpoint = fetch_checkpoint(model_name)
    from ghostnet_keras import convert_weights  # needs torch only here, to read the .pth

    if not PRETRAINED[model_name].expected_hashes:
        _print(
            f"Note: no SHA-256 digest is published for {os.path.basename(checkpoint)}; it is "
            "checked by its structure (every tensor name and shape) only."
        )
    _print(f"Converting {checkpoint} to Keras weights (once): {target}")
    try:
        return convert_weights.convert_checkpoint(checkpoint, model_name, target)
    except ValueError:  # truncated, corrupt or not this model: fetch it afresh next time
        os.remove(checkpoint)
        _print(f"Deleted {checkpoint}, which cannot be converted.")
        raise


def imagenet_model(model_name):
    """The full ``model_name`` (with the top) holding its ImageNet weights."""
    check_available(model_name)
    from ghostnet_keras.convert_weights import build_model

    target = converted_path(model_name)
    if os.path.exists(target):
        reference = build_model(model_name, include_top=True)
        try:
            reference.load_weights(target)
            return reference
        except Exception as err:  # h5py and Keras raise many types for a damaged file
            _print(f"The cached {target} cannot be read ({type(err).__name__}); converting again.")
            os.remove(target)
    return _convert(model_name, target)


def copy_weights(source, target, skip=()):
    """Copies weights from ``source`` to ``target`` layer by layer, matched by name.

    Every layer of ``source`` with weights (except those named in ``skip``) must
    be in ``target`` with the same shapes. Layers of ``target`` that ``source``
    lacks (e.g. of a graph upstream of ``input_tensor``) are left as they are.
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

    With ``include_top=False`` everything but the head (``head``, ``classifier``)
    is loaded.
    """
    reference = imagenet_model(model_name)
    copy_weights(reference, model, skip=() if include_top else ("head", "classifier"))
