"""`python -m ghostnet_keras.profiler`: the table, one image, and one clear line on bad input.

One run is a real process (the table with an image); the others call the same `main` in this
process (its return value is the exit status), which saves a TensorFlow start-up each.
"""

import json
import subprocess
import sys

import pytest
from PIL import Image
from test_cli_quiet import NOISE, default_env

from ghostnet_keras import extras, profiler

from conftest import ROOT


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "ghostnet_keras.profiler", *args],
        capture_output=True,
        text=True,
        env=default_env(),
        cwd=ROOT,
        timeout=300,
    )


def test_profile_table_and_one_image(tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (100, 80), (200, 30, 30)).save(image)
    result = _run("ghostnet_050", "ghostnet_100", "--image", str(image))
    assert result.returncode == 0, result.stderr
    assert "| ghostnet_050 | 224x224 | 2,587,292 | 42.3M |" in result.stdout
    assert "| ghostnet_100 | 224x224 | 5,182,508 | 141.2M |" in result.stdout
    assert "Top-5 of ghostnet_050" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("  n")]) == 5
    assert not NOISE.search(result.stdout + result.stderr)  # TensorFlow's start-up lines


def test_profile_at_another_size(capsys):
    assert profiler.main(["ghostnet_100", "--input_size", "320"]) == 0
    assert "| ghostnet_100 | 320x320 | 5,182,508 |" in capsys.readouterr().out


def test_unknown_model_is_one_line(capsys):
    assert profiler.main(["ghostnet_10"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: Unknown model. Did you mean: ")
    assert line.endswith("Received: name='ghostnet_10'")


def test_missing_image_is_one_line(tmp_path, capsys):
    assert profiler.main(["ghostnet_050", "--image", str(tmp_path / "none.jpg")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: No such image file.")


# Runs a module as `python -m` would, with TensorFlow absent (as in a core install, where
# Keras's default backend is missing): importing it fails as a missing package does.
NO_TENSORFLOW = """
import runpy, sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTensorFlow())
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "command",
    [
        ["ghostnet_keras.profiler", "ghostnet_050", "--weights=imagenet"],
        ["ghostnet_keras.convert_weights", "--model=ghostnet_050", "--output=x.weights.h5"],
        ["ghostnet_keras.pretrained"],
    ],
    ids=lambda command: command[0],
)
def test_without_a_keras_backend_each_command_is_one_line(command, tmp_path):
    # Issue 23: convert_weights said only "No module named 'tensorflow'", the profiler gave
    # a 44-line traceback.
    env = {k: v for k, v in default_env().items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: tensorflow is not installed: Keras needs its backend")
    assert f"Install it with: {extras.install_hint('tensorflow')}" in result.stderr
    assert "KERAS_BACKEND" in result.stderr and result.stdout == ""


class _Distribution:
    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        return json.dumps(self.direct_url) if name == "direct_url.json" else None


@pytest.mark.parametrize(
    "direct_url, hint",
    [
        (None, 'pip install "ghostnet-keras[train]"'),  # from an index
        (
            {"url": "file:///src/ghostnet", "dir_info": {}},
            'pip install "/src/ghostnet[train]"',
        ),
        (
            {"url": "file:///src/ghostnet", "dir_info": {"editable": True}},
            'pip install -e "/src/ghostnet[train]"',
        ),
        (
            {"url": "https://x/g.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
            'pip install "ghostnet-keras[train] @ git+https://x/g.git@abc"',
        ),
    ],
    ids=["index", "folder", "editable", "vcs"],
)
def test_install_hint_works_where_the_package_came_from(direct_url, hint, monkeypatch):
    # Issue 23: every hint said `pip install "ghostnet-keras[train]"`, which no index has.
    monkeypatch.setattr(extras, "_checkout_root", lambda: None)
    found = [_Distribution(direct_url)] if direct_url else []
    monkeypatch.setattr(extras.importlib.metadata, "distributions", lambda name: found)
    assert extras.install_hint("train") == hint


def test_install_hint_from_this_checkout():
    assert extras.install_hint("convert") == f'pip install -e "{ROOT}[convert]"'
    with pytest.raises(extras.MissingExtraError, match=r"Install it with: pip install -e "):
        extras.require("no_such_module_of_ghostnet", "convert")
