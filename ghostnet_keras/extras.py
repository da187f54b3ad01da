"""The optional parts of the install, and the one message that names a missing one."""

import importlib

PACKAGE = "ghostnet-keras"

# extra -> what it brings (the setup.cfg extras of the same name).
EXTRAS = {
    "train": "training (TensorFlow, tensorflow-datasets, tensorboard)",
    "tflite": "TFLite conversion, evaluation and latency (TensorFlow, ai-edge-litert)",
    "qat": "quantization-aware training (tensorflow-model-optimization, tf-keras)",
    "convert": "reading PyTorch checkpoints (torch, safetensors)",
}


class MissingExtraError(ImportError):
    """A module of an optional extra is not installed; the message says what to install."""


def install_hint(extra):
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
