"""``python -m ghostnet_keras.data SPEC [--data_dir DIR] [--check]`` (see check.py)."""

import sys

import ghostnet_keras.cli as cli

with cli.quiet_imports():
    from ghostnet_keras.data.check import main

sys.exit(main())
