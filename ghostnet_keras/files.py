"""Writing files so that a crash, a full disk or a kill never leaves a damaged one behind.

Every tool of the project (checkpoints, ``model.keras``, JSON state, converted weights,
``.tflite`` files) writes through :func:`atomic_path`: the content goes to a temporary file in
the destination folder, is flushed to disk, gets the permissions the user's umask gives a new
file, and only then replaces the destination in one ``os.replace``. On any error the temporary
file is removed and the destination is left as it was.
"""

import contextlib
import json
import os
import pathlib
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Write the whole content to the yielded path (any writer: ``open``, ``model.save``,
    ``save_weights``). The temporary name keeps the destination's suffix, so writers that
    check it (``.keras``, ``.weights.h5``) accept it.

    Example:
        with atomic_path("model.keras") as tmp:
            model.save(tmp)
    """
    path = pathlib.Path(path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", suffix=_suffix(path.name), dir=folder)
    os.close(fd)
    os.remove(tmp)  # writers such as h5py refuse or append to an existing file
    try:
        yield pathlib.Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def _suffix(name):
    for suffix in (".weights.h5", ".weights.json"):
        if name.endswith(suffix):
            return suffix
    return pathlib.Path(name).suffix


def write_bytes(path, content):
    """Writes ``content`` (bytes) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_json(path, payload):
    """Writes ``payload`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
