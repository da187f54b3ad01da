"""Reading checkpoint files into ``{tensor name: float32 numpy array}``.

- PyTorch ``.pth``/``.pt``/``.pth.tar``/``.bin`` files need PyTorch (the ``convert`` extra);
  ``.safetensors`` files need the ``safetensors`` package only.
- PaddlePaddle ``.pdparams`` files are pickled numpy arrays: they are read with a restricted
  unpickler that rebuilds numpy arrays and plain containers and nothing else, so neither
  PaddlePaddle nor arbitrary code from the file runs.

No reader allocates more than the file can hold: the sizes a file declares (the entries of a
PyTorch zip, the storages of a legacy PyTorch pickle, the arrays a ``.pdparams`` pickle
constructs) are checked against the file's own size before anything of that size is
allocated, and a file that declares more is refused with one line (a 100-byte pickle must not
make the reader allocate gigabytes). ``.safetensors`` files need no check of ours: the
library maps the file and refuses offsets beyond its end.

A state dict is found inside the wrappers that training scripts commonly write
(``{"state_dict": ...}``, ``{"model": ...}``, EMA copies) and DataParallel's ``module.``
prefixes are removed.
"""

import math
import operator
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


class OversizedFileError(ValueError):
    """A checkpoint declares more tensor data than the file itself holds."""


def _refuse_oversized(path, declared, size, what):
    raise OversizedFileError(
        f"Cannot read {path}: it declares {declared:,} bytes of {what}, more than its "
        f"{size:,} bytes can hold; the file is damaged or crafted, and nothing was allocated."
    )


# Bytes per element of the storage classes a legacy (pre-zip) PyTorch pickle names.
_STORAGE_ELEMENT_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
}
_LARGEST_ELEMENT = max(_STORAGE_ELEMENT_SIZES.values())


class _Stub:
    """Stands for every object of a pickle scanned for its declared sizes; runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _DeclaredStorages(pickle.Unpickler):
    """Unpickles a legacy PyTorch pickle with stubs for every global, recording the byte
    size of each storage its persistent ids declare (``("storage", type, key, location,
    numel, view)``)."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self.storages = {}

    def find_class(self, module, name):
        return type(name, (_Stub,), {})

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage"):
            storage_type, key, numel = pid[1], pid[2], pid[4]
            element = _STORAGE_ELEMENT_SIZES.get(getattr(storage_type, "__name__", ""))
            if isinstance(numel, int):
                self.storages[str(key)] = max(numel, 0) * (element or _LARGEST_ELEMENT)
        return None


def _check_torch_sizes(path):
    """Refuses a PyTorch file whose declared sizes exceed the file's (see the module
    docstring): the uncompressed sizes of a zip's entries (``torch.save`` stores them
    uncompressed, so they fit in the file), or a legacy pickle's storages."""
    import zipfile

    size = os.path.getsize(path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return  # torch.load reports the damage
        if declared > size:
            _refuse_oversized(path, declared, size, "uncompressed entries")
        return
    scanner = None
    try:
        with open(path, "rb") as f:
            for _ in range(4):  # magic number, protocol, system info, then the objects
                scanner = _DeclaredStorages(f)
                scanner.load()
    except Exception:  # noqa: BLE001 - not a legacy pickle: torch.load reports what it is
        pass
    declared = sum(scanner.storages.values()) if scanner is not None else 0
    if declared > size:
        _refuse_oversized(path, declared, size, "storages")


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
        _check_torch_sizes(path)
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

    # The callables that allocate an array or scalar of a size their arguments declare.
    ALLOCATING = {"ndarray", "_reconstruct", "scalar"}

    def __init__(self, file, budget, **kwargs):
        super().__init__(file, **kwargs)
        self.budget = budget  # bytes the arrays may still take: the file's size at first
        self.size = budget

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a .pdparams file")
        found = super().find_class(module, name)
        return self._bounded(found, name) if name in self.ALLOCATING else found

    def _take(self, shape, dtype):
        """Counts ``shape`` x ``dtype`` against the budget; refuses what exceeds it."""
        try:
            dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
            count = math.prod(max(operator.index(d), 0) for d in dims)
            nbytes = count * np.dtype(dtype).itemsize
        except (TypeError, ValueError):
            return  # numpy rejects such arguments itself, allocating nothing
        self.budget -= nbytes
        if self.budget < 0:
            raise OversizedFileError(
                f"the file declares an array of shape {dims} and dtype {np.dtype(dtype)} "
                f"({nbytes:,} bytes), more than its {self.size:,} bytes can hold"
            )

    def _bounded(self, found, name):
        if name == "ndarray":  # ndarray(shape, dtype=float, buffer=None, ...)

            def ndarray(shape, dtype=float, *args, **kwargs):
                self._take(shape, dtype)
                return np.ndarray(shape, dtype, *args, **kwargs)

            ndarray.wrapped = found
            return ndarray
        if name == "_reconstruct":  # _reconstruct(subtype, shape, dtype)

            def reconstruct(subtype, shape, dtype):
                self._take(shape, dtype)
                return found(getattr(subtype, "wrapped", subtype), shape, dtype)

            return reconstruct

        def scalar(dtype, *args):  # scalar(dtype, data): an array of one element
            self._take((1,), dtype)
            return found(dtype, *args)

        return scalar


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
            obj = _NumpyOnlyUnpickler(f, os.path.getsize(path), encoding="latin1").load()
    except OversizedFileError as err:
        raise OversizedFileError(f"Cannot read {path}: {err}; it is damaged or crafted.") from None
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
