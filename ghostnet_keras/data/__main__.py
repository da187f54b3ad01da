"""``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]`` (see check.py)."""

import sys

from ghostnet_keras import cli

with cli.quiet_imports():
    from ghostnet_keras.data.check import main

sys.exit(main())
