"""`python -m ghostnet_keras.profiler`: the table, one image, and one clear line on bad input.

One run is a real process (the table with an image); the others call the same `main` in this
process (its return value is the exit status), which saves a TensorFlow start-up each.
"""

import subprocess
import sys

from PIL import Image
from test_cli_quiet import NOISE, default_env

from ghostnet_keras import profiler

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
