"""The optional parts of the install, and the one message that names a missing one."""

import importlib
import importlib.metadata
import json
import os
import urllib.parse
import urllib.request

PACKAGE = "ghostnet-keras"  # the distribution's name (setup.cfg); it is not on any index

# extra -> what it brings (the setup.cfg extras of the same name).
EXTRAS = {
    "train": "training (TensorFlow, tensorflow-datasets, tensorboard)",
    "tflite": "TFLite conversion, evaluation and latency (TensorFlow, ai-edge-litert)",
    "qat": "quantization-aware training (tensorflow-model-optimization, tf-keras)",
    "convert": "reading PyTorch checkpoints (torch, safetensors)",
    "tensorflow": "the TensorFlow backend of Keras",
    "mediapipe": "MediaPipe Tasks, the phone apps' classifier (install it after the others)",
    "hub": "keras-hub models: backbones, classifiers, presets, RetinaNet detectors (keras-hub)",
}


class MissingExtraError(ImportError):
    """A module of an optional extra is not installed; the message says what to install."""


def _checkout_root():
    """The source checkout this package is imported from (an editable install, or a run
    from the checkout), or ``None``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(os.path.join(root, "setup.cfg"), encoding="utf-8") as f:
            return root if f"name = {PACKAGE}\n" in f.read() else None
    except OSError:
        return None


def install_source():
    """Where this package was installed from, as ``(kind, where)``: ``("checkout", root)``
    (editable, or run from a checkout), ``("folder", path)`` (``pip install PATH``),
    ``("url", url)`` (a VCS or archive URL) or ``("index", None)``; from the checkout's
    location and the install's ``direct_url.json`` (PEP 610)."""
    root = _checkout_root()
    if root is not None:
        return "checkout", root
    for dist in importlib.metadata.distributions(name=PACKAGE):
        try:
            info = json.loads(dist.read_text("direct_url.json") or "null")
        except ValueError:
            continue
        if not isinstance(info, dict) or not info.get("url"):
            continue
        url = info["url"]
        if "vcs_info" in info:
            commit = info["vcs_info"].get("commit_id")
            vcs = info["vcs_info"].get("vcs", "git")
            return "url", f"{vcs}+{url}" + (f"@{commit}" if commit else "")
        if url.startswith("file:") and "dir_info" in info:
            path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
            return ("checkout" if info["dir_info"].get("editable") else "folder"), path
        return "url", url
    return "index", None


def install_hint(extra):
    """The command that installs ``extra`` where this package came from (an index name
    would fail for a package installed from a checkout: it is not on PyPI)."""
    kind, where = install_source()
    if kind == "checkout":
        return f'pip install -e "{where}[{extra}]"'
    if kind == "folder":
        return f'pip install "{where}[{extra}]"'
    if kind == "url":
        return f'pip install "{PACKAGE}[{extra}] @ {where}"'
    return f'pip install "{PACKAGE}[{extra}]"'


def require(module, extra, purpose=None):
    """Imports and returns ``module``; if it is missing, raises ``MissingExtraError`` whose
    one-line message names the module, what needs it and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if extra not in EXTRAS:
            raise ValueError(f"Unknown extra. Received: extra={extra!r}") from err
        need = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"{module} is not installed; it is needed{need}. Install it with: {install_hint(extra)}"
        ) from err


def require_keras(purpose=None):
    """Imports and returns Keras; if its backend is missing (a core install has none:
    Keras defaults to TensorFlow), raises ``MissingExtraError`` naming the backend, the
    extra that brings TensorFlow and ``KERAS_BACKEND``."""
    try:
        return importlib.import_module("keras")
    except ImportError as err:
        missing = (getattr(err, "name", None) or "a module Keras needs").split(".")[0]
        if missing == "keras":
            raise MissingExtraError(
                f"keras is not installed. Install it with: {install_hint('tensorflow')}"
            ) from None
        need = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"{missing} is not installed: Keras needs its backend{need} (KERAS_BACKEND="
            f"{os.environ.get('KERAS_BACKEND', 'tensorflow')}). Install it with: "
            f"{install_hint('tensorflow')}, or set KERAS_BACKEND to an installed backend "
            "(jax, torch)."
        ) from None
