"""The shared entry point of the `tflite` command lines: bad input is one line, not a traceback."""

import os
import sys


def run_cli(parse_args, run, argv=None):
    """Parses ``argv`` (default ``sys.argv[1:]``) with ``parse_args`` and calls ``run(args)``.

    A ``ValueError``, ``OSError``, TensorFlow runtime error or missing extra becomes one
    ``error: ...`` line on stderr and exit status 2; returns 0 on success.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    from ghostnet_keras.extras import MissingExtraError

    try:
        run(args)
    except (ValueError, OSError, tf.errors.OpError, MissingExtraError) as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
