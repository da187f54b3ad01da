"""The GPU latency script runs on a CPU (issue 22): one row, batch 1, 64 px, a few runs; the
results file names the device, holds the row and its training rate (no timing is asserted)."""

import math

import pytest

from benchmarks import gpu_latency


@pytest.mark.slow
def test_latency_and_training_throughput_on_cpu(tmp_path, capsys):
    output = tmp_path / "latency.md"
    code = gpu_latency.main(
        [
            "--rows=resnet34",
            "--batches=1",
            "--size=64",
            "--dtypes=float16",
            "--runs=3",
            "--warmup=1",
            "--train_steps=1",
            "--train_batch=2",
            f"--output={output}",
        ]
    )
    assert code == 0
    text = output.read_text()
    assert "device: CPU" in text
    rows = [line for line in text.splitlines() if line.startswith("| resnet34 |")]
    assert [row.split(" | ")[1:3] for row in rows[:1]] == [["float16", "1"]]
    for row in rows[:1]:
        median, p10, p90 = (float(cell) for cell in row.split(" | ")[3:6])
        assert 0 < p10 <= median <= p90 and math.isfinite(p90)
    assert float(rows[1].split(" | ")[1].rstrip(" |")) > 0  # training images per second
    assert "Wrote" in capsys.readouterr().out
