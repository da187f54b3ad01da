"""The shared entry point of the `tflite` command lines: bad input is one line, not a traceback."""

import os
import sys

from ghostnet_keras import cli, extras

# What the `tflite` extra brings, imported before any work so that a missing one is named.
REQUIRED = (("tensorflow", "TensorFlow"), ("ai_edge_litert", "the LiteRT interpreter"))


def _one_line(err):
    return " ".join(str(err).split())


def add_verbose(parser):
    """Adds ``--verbose``: TensorFlow's and LiteRT's C++ log lines shown (default hidden)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's and LiteRT's C++ log lines (also GHOSTNET_VERBOSE=1)",
    )


def check_output(path, argument="output", suffix=None):
    """Checks, before any work, that a file can be written at ``path``: not a folder, in an
    existing folder, and ending with ``suffix`` if one is given."""
    if suffix and not path.endswith(suffix):
        raise ValueError(f"`--{argument}` must end with {suffix}. Received: {argument}={path!r}")
    if os.path.isdir(path):
        raise ValueError(f"`--{argument}` is an existing folder. Received: {argument}={path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"The output folder {folder} does not exist. Received: {argument}={path!r}"
        )


def check_folder(path, argument):
    """Checks, before any work, that ``path`` is a folder or can be made one (not a file)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"`--{argument}` is an existing file, not a folder. Received: {argument}={path!r}"
        )


def run_cli(parse_args, run, argv=None, required=REQUIRED, validate=None, extra="tflite"):
    """Parses ``argv`` (default ``sys.argv[1:]``) with ``parse_args`` and calls ``run(args)``.

    A ``--verbose`` flag (:func:`add_verbose`) sets ``GHOSTNET_VERBOSE=1``: the C++ log
    lines that are hidden by default are shown. ``validate(args)``, if given, checks the
    arguments first, before anything heavy is
    imported, so that a bad flag is reported at once. ``required`` lists the
    ``(module, purpose)`` pairs of the ``extra`` (default ``tflite``) that the command needs
    whatever its arguments.

    A missing extra, a ``ValueError``, an ``OSError``, a TensorFlow runtime error or a failed
    download (Keras raises a bare ``Exception`` for it) becomes one ``error: ...`` line on
    stderr and exit status 2; returns 0 on success.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "verbose", False):  # seen by the library's quiet blocks (cli.is_verbose)
        os.environ["GHOSTNET_VERBOSE"] = "1"
    # Before anything imports TensorFlow (ghostnet_keras, extras and the parsers do not).
    cli.quiet()
    try:
        if validate is not None:
            validate(args)
        with cli.quiet_imports():
            for module, purpose in required:
                extras.require(module, extra, purpose)
    except (ValueError, extras.MissingExtraError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    try:
        run(args)
    except Exception as err:
        tf = sys.modules.get("tensorflow")  # only TensorFlow, once imported, raises OpError
        errors = (ValueError, OSError, ImportError)
        errors += (tf.errors.OpError,) if hasattr(tf, "errors") else ()
        # ``keras.utils.get_file`` reports a failed download as a bare ``Exception``.
        if not isinstance(err, errors) and type(err) is not Exception:
            raise
        is_op_error = hasattr(tf, "errors") and isinstance(err, tf.errors.OpError)
        line = cli.runtime_error_line(err) if is_op_error else _one_line(err)
        print(f"error: {line}", file=sys.stderr)
        return 2
    return 0
