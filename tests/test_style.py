"""The code is ruff clean (lint and format), as the project's style requires, and the docs name
real tests."""

import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (extra `test`)")
    result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_input_doc_names_tests_that_exist():
    """docs/bad-input.md says which test reproduces each row: every test it names exists."""
    import re

    doc = (ROOT / "docs" / "bad-input.md").read_text()
    named = re.findall(r"`(test_\w+\.py)(?:::(\w+))?`", doc)
    assert len(named) > 20
    for file, test in named:
        source = (ROOT / "tests" / file).read_text()
        assert not test or f"def {test}(" in source, f"{file}::{test} is not a test"
