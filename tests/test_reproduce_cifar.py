"""The paper's CIFAR tables from one command (issue 22): the recipe, the rows as data checked
against the paper, the time budget, the in-memory input, and Table 11 end to end (tiny)."""

import numpy as np
import pytest

from benchmarks import reproduce_cifar
from training import memory_data, optimization, recipes


def test_cifar_recipe_is_he_et_al_and_scales_with_the_epochs():
    full = recipes.make_config("cifar10", model_dir="run")
    assert (full.batch_size, full.learning_rate, full.momentum, full.weight_decay) == (
        128,
        0.1,
        0.9,
        1e-4,
    )
    assert optimization.decay_steps(full, 391) == [32_062, 48_093]  # He et al.: 32k, 48k of 64k
    short = recipes.make_config("cifar10", model_dir="run", epochs=20)
    assert short.lr_decay_epochs == (10, 15)
    odd = recipes.make_config("cifar10", model_dir="run", epochs=3)
    assert optimization.decay_steps(odd, 10) == [15, 22]  # 50% and 75% of 30 steps
    explicit = recipes.make_config("cifar10", model_dir="run", epochs=3, lr_decay_epochs="2")
    assert explicit.lr_decay_epochs == (2,)
    with pytest.raises(ValueError, match=r"Received: lr_decay_fractions=\(0\.8, 0\.5\)"):
        recipes.make_config("cifar10", model_dir="run", lr_decay_fractions="0.8,0.5")


def test_every_table_has_rows_and_unbuildable_rows_say_why():
    for table in reproduce_cifar.TABLES:
        assert reproduce_cifar.table_rows(table), table
    rows = {row.label: row for row in reproduce_cifar.table_rows("11")}
    assert list(rows) == ["ResNet56", "ResNet56-0.7x", "G-Ghost w/o mix", "G-Ghost w/ mix"]
    assert reproduce_cifar.buildable(rows["ResNet56"]) is None
    assert "takes no argument 'width'" in reproduce_cifar.buildable(rows["ResNet56-0.7x"])
    with pytest.raises(ValueError, match="Received: table='12'"):
        reproduce_cifar.table_rows("12")


def test_budget_chooses_one_epoch_count_that_fits():
    timings = [reproduce_cifar.Timing(10.0, 5.0), reproduce_cifar.Timing(20.0, 5.0)]
    # 100 s left: 10 s of resumed runs' overhead, then 3 more epochs of 30 s.
    assert reproduce_cifar.choose_epochs(timings, 100, 164) == 4
    assert reproduce_cifar.choose_epochs(timings, 5, 164) == 1  # never fewer than the first
    assert reproduce_cifar.choose_epochs(timings, 10**6, 164) == 164  # never more than asked


def test_batch_augmentation_crops_a_padded_window_and_flips():
    images = np.arange(3 * 32 * 32 * 3, dtype=np.int64).reshape(3, 32, 32, 3) % 251
    out = memory_data.augment_batch(images.astype(np.uint8), seed=np.array([1, 2])).numpy()
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.float32
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)]).astype(np.float32)
    for image, source in zip(out, padded, strict=True):
        windows = [
            window
            for dy in range(9)
            for dx in range(9)
            for window in (
                source[dy : dy + 32, dx : dx + 32],
                source[dy : dy + 32, dx : dx + 32][:, ::-1],
            )
        ]
        assert any(np.array_equal(image, window) for window in windows)


@pytest.mark.slow
def test_table_11_end_to_end(cifar10_dir, tmp_path, capsys):
    """`--budget_minutes` on a tiny subset: every buildable row is checked against the paper,
    trained by the project's trainer (one epoch: the budget leaves no more) and written down
    beside the paper's accuracy, with the device, the epochs and the seed. The budget is a
    fraction of a minute: at 3 minutes the rows of 20 images would fit 164 epochs each."""
    output = tmp_path / "table11.md"
    code = reproduce_cifar.main(
        [
            "--table=11",
            "--budget_minutes=0.05",
            f"--data={cifar10_dir}",
            "--train_images=20",
            "--test_images=10",
            "--batch_size=10",
            f"--work_dir={tmp_path / 'runs'}",
            f"--output={output}",
        ]
    )
    assert code == 0
    text = output.read_text()
    assert "device: CPU" in text and "seed 0" in text
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if "|" in line}
    for label, paper in (
        ("ResNet56", "94.1"),
        ("G-Ghost w/o mix", "93.7"),
        ("G-Ghost w/ mix", "93.9"),
    ):
        cells = [cell.strip() for cell in lines[label].split("|")]
        assert cells[5] == "1" and 0 <= float(cells[6]) <= 100 and cells[7] == paper, cells
    assert "not run: Model resnet56 takes no argument 'width'" in lines["ResNet56-0.7x"]
    assert "Budget 0.05 min: 1 epoch(s) for every row." in capsys.readouterr().out
