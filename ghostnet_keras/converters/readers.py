"""Reading checkpoint files into ``{tensor name: float32 numpy array}``.

- PyTorch ``.pth``/``.pt``/``.pth.tar``/``.bin`` files need PyTorch (the ``convert`` extra);
  ``.safetensors`` files need the ``safetensors`` package only.
- PaddlePaddle ``.pdparams`` files are pickled numpy arrays: they are read with a restricted
  unpickler that rebuilds numpy arrays and plain containers and nothing else, so neither
  PaddlePaddle nor arbitrary code from the file runs.

A state dict is found inside the wrappers that training scripts commonly write
(``{"state_dict": ...}``, ``{"model": ...}``, EMA copies) and DataParallel's ``module.``
prefixes are removed.
"""

import os
import pickle

import numpy as np

from ghostnet_keras.extras import require

# Keys under which training scripts store the state dict, in order of preference.
WRAPPER_KEYS = ("state_dict", "model", "model_state", "net", "state_dict_ema", "model_ema")
# The parameter-name table that ``paddle.save`` adds to a state dict.
PADDLE_NAME_TABLE = "StructuredToParameterName@@"
PADDLE_SUFFIXES = (".pdparams",)


def _first_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def _is_tensor_dict(obj, is_tensor):
    return isinstance(obj, dict) and any(is_tensor(v) for v in obj.values())


def unwrap(obj, is_tensor):
    """The state dict inside ``obj``: ``obj`` itself when it holds tensors, else the
    first wrapper key (``WRAPPER_KEYS``) whose value holds them."""
    if _is_tensor_dict(obj, is_tensor) or not isinstance(obj, dict):
        return obj
    for key in WRAPPER_KEYS:
        if isinstance(obj.get(key), dict):
            return unwrap(obj[key], is_tensor)
    return obj


def strip_module_prefix(tensors):
    return {
        (name[len("module.") :] if name.startswith("module.") else name): value
        for name, value in tensors.items()
    }


def _check_path(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    return path


def read_torch(path):
    """Reads a PyTorch checkpoint or ``.safetensors`` file (see the module docstring).

    Raises ``ImportError`` naming the extra when PyTorch (or safetensors) is missing,
    ``FileNotFoundError`` for a missing file and ``ValueError`` for a truncated, corrupt
    or unrecognised one.
    """
    path = _check_path(path)
    name = os.path.basename(path)
    if path.endswith(".safetensors"):
        numpy_st = require("safetensors.numpy", "convert", f"reading {name}")
        try:
            tensors = dict(numpy_st.load_file(path))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(
                f"Cannot read {path}: the file is truncated or corrupt ({_first_line(err)})"
            ) from err
    else:
        torch = require("torch", "convert", f"converting the PyTorch checkpoint {name}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # zip, pickle and unpickler errors alike
            raise ValueError(
                f"Cannot read {path}: the file is truncated or corrupt, or not a PyTorch "
                f"checkpoint ({_first_line(err)})"
            ) from err
        obj = unwrap(obj, lambda v: isinstance(v, torch.Tensor))
        if not isinstance(obj, dict):
            raise ValueError(
                f"{path} holds a {type(obj).__name__}, not a state dict of named tensors."
            )
        tensors = {}
        for key, value in obj.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                tensors[key] = (value.float() if value.is_floating_point() else value).numpy()
    tensors = strip_module_prefix(tensors)
    if not tensors:
        raise ValueError(f"{path} holds no tensors.")
    return tensors


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and builtin containers; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("builtins", "tuple"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("__builtin__", "tuple"),
        ("__builtin__", "list"),
        ("__builtin__", "dict"),
        ("_codecs", "encode"),  # numpy arrays pickled under Python 2 protocol
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a .pdparams file")


def read_pdparams(path):
    """Reads a PaddlePaddle ``.pdparams`` file without PaddlePaddle.

    The file is a pickled dict of parameter name -> numpy array (``paddle.save`` of a
    state dict; newer Paddle versions store ``(name, array)`` tuples). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for a truncated, corrupt
    or unrecognised one.
    """
    path = _check_path(path)
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as err:  # unpickling errors of every kind
        raise ValueError(
            f"Cannot read {path}: the file is truncated or corrupt, or not a PaddlePaddle "
            f".pdparams file ({_first_line(err)})"
        ) from err

    def as_array(value):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
            return value[1]
        return value if isinstance(value, np.ndarray) else None

    obj = unwrap(obj, lambda v: as_array(v) is not None)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a dict of named arrays.")
    tensors = {}
    for key, value in obj.items():
        array = as_array(value)
        if key != PADDLE_NAME_TABLE and array is not None:
            tensors[key] = array.astype("float32") if array.dtype.kind == "f" else array
    if not tensors:
        raise ValueError(f"{path} holds no arrays.")
    return strip_module_prefix(tensors)


def read_state_dict(path, reader=None):
    """Reads ``path`` with ``reader`` (``"torch"`` or ``"paddle"``; default: by suffix)."""
    if reader is None:
        reader = "paddle" if os.fspath(path).endswith(PADDLE_SUFFIXES) else "torch"
    return read_pdparams(path) if reader == "paddle" else read_torch(path)
