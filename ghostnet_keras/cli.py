"""The quiet start of every command line: TensorFlow's C++ start-up lines hidden by default.

Imports neither Keras nor TensorFlow, so a command line calls it before they load. Verbose
output comes back with the command's ``--verbose`` flag or the environment variable
``GHOSTNET_VERBOSE=1`` (``GHOSTNET_TRAIN_VERBOSE=1`` does the same).
"""

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile

VERBOSE_VARIABLES = ("GHOSTNET_VERBOSE", "GHOSTNET_TRAIN_VERBOSE")
QUIET_LOGGERS = ("matplotlib", "tensorflow", "h5py", "absl")
# Lines that LiteRT and the TFLite converter write to file descriptor 2 from C++ on every
# run, which no log level or environment variable turns off: the XNNPACK delegate's note
# (LiteRT's own logger) and the MLIR quantizer's settings (int8 conversion).
NATIVE_NOISE = re.compile(
    r"^(INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
    r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: )"
)


def is_verbose(flag=False):
    """True if ``flag`` is set or a variable of ``VERBOSE_VARIABLES`` is set to other than 0."""
    return bool(flag) or any(
        os.environ.get(name, "") not in ("", "0") for name in VERBOSE_VARIABLES
    )


def quiet(verbose=False):
    """Unless ``verbose``: TensorFlow's C++ log level to 3 (errors too; a value the user set
    is kept) and the libraries' Python loggers to ERROR. Call before TensorFlow loads."""
    if is_verbose(verbose):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def quiet_imports(verbose=False):
    """Calls :func:`quiet`, then, unless verbose, sends file descriptor 2 to /dev/null inside
    the block: TensorFlow writes some start-up lines (cudart_stub, cpu_feature_guard, oneDNN,
    cuInit) before its log level applies. Wrap only imports: an import error raised inside
    the block is reported by Python after stderr is back."""
    quiet(verbose)
    if is_verbose(verbose):
        yield
        return
    with open(os.devnull, "wb") as devnull, _stderr_to(devnull.fileno()):
        yield


@contextlib.contextmanager
def _stderr_to(fd):
    """File descriptor 2 (C++ writes and Python's ``sys.stderr``) goes to ``fd`` inside the
    block, and back when it ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_quietly(*modules, verbose=False):
    """Imports ``modules`` (names) inside :func:`quiet_imports`; returns the last one."""
    import importlib

    module = None
    with quiet_imports(verbose):
        for name in modules:
            module = importlib.import_module(name)
    return module


@contextlib.contextmanager
def quiet_native(verbose=False, noise=NATIVE_NOISE):
    """Unless verbose, drops the C++ lines of ``noise`` that the block writes to stderr.

    File descriptor 2 goes to a temporary file inside the block; when the block ends, every
    line of it that ``noise`` does not match is written to stderr: a real error or warning
    is shown, the known start-up notes are not. The block's own Python writes to
    ``sys.stderr`` are kept the same way.
    """
    if is_verbose(verbose):
        yield
        return
    with tempfile.TemporaryFile() as captured:
        try:
            with _stderr_to(captured.fileno()):
                yield
        finally:
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not noise.search(line.rstrip("\n"))
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class OneLineParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose usage errors are one line on stderr (exit 2),
    without the usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def error_line(err):
    """The one line a command line prints for ``err`` (after ``error: ``): the message's
    first line, any further lines joined after "Details:"."""
    first, *rest = str(err).splitlines() or [type(err).__name__]
    detail = f" Details: {'; '.join(s.strip() for s in rest)}" if rest else ""
    return f"{first}{detail}"


# The parts of a TensorFlow runtime error's message (`tf.errors.OpError.message`) that are no
# use on a command line: where the failing op was defined (a Python stack), and the counts.
_OP_ERROR_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .* defined at|File \"|\[\[|\d+ root error"
    r"|\d+ successful operations|\d+ derived errors)"
)
_ROOT_ERROR = re.compile(r"^\(\d+\) [A-Z_]+:\s*")
_NODE = re.compile(r"^Detected at node (\S+)")
# Internal names: the wrapped function of an eager op, the op or function at the end.
_INTERNAL = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$")


def runtime_error_line(err):
    """The one line a command line prints for a TensorFlow runtime error (an ``OpError``):
    its type, what went wrong (each distinct root error once) and the op that failed, without
    the Python stack where that op was defined: ``InvalidArgumentError: Incompatible shapes:
    [64] vs. [0,32,32,3] (at node .../batchnorm/mul_1)``."""
    message = getattr(err, "message", None) or str(err)
    node, parts = None, []
    for line in message.splitlines():
        line = line.strip()
        node = node or (m.group(1) if (m := _NODE.match(line)) else None)
        line = _INTERNAL.sub("", line)
        if not line or _OP_ERROR_NOISE.match(line):
            continue
        line = " ".join(_ROOT_ERROR.sub("", line).split())
        if line not in parts:
            parts.append(line)
    text = "; ".join(parts) or type(err).__name__
    return f"{type(err).__name__}: {text}" + (f" (at node {node})" if node else "")
