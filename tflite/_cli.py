"""The shared entry point of the `tflite` command lines: bad input is one line, not a traceback."""

import sys

from ghostnet_keras import cli, extras

# What the `tflite` extra brings, imported before any work so that a missing one is named.
REQUIRED = (("tensorflow", "TensorFlow"), ("ai_edge_litert", "the LiteRT interpreter"))


def _one_line(err):
    return " ".join(str(err).split())


def run_cli(parse_args, run, argv=None, required=REQUIRED, validate=None):
    """Parses ``argv`` (default ``sys.argv[1:]``) with ``parse_args`` and calls ``run(args)``.

    ``validate(args)``, if given, checks the arguments first, before anything heavy is
    imported, so that a bad flag is reported at once. ``required`` lists the
    ``(module, purpose)`` pairs of the ``tflite`` extra that the command needs whatever its
    arguments.

    A missing extra, a ``ValueError``, an ``OSError``, a TensorFlow runtime error or a failed
    download (Keras raises a bare ``Exception`` for it) becomes one ``error: ...`` line on
    stderr and exit status 2; returns 0 on success.
    """
    # Before anything imports TensorFlow (ghostnet_keras and extras do not).
    cli.quiet()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if validate is not None:
            validate(args)
        with cli.quiet_imports():
            for module, purpose in required:
                extras.require(module, "tflite", purpose)
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
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0
