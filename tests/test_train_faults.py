"""Training on a bad day (issue 13): damaged or truncated checkpoints, an invalid state file,
a model that does not match the run directory, a full disk, two runs on one directory, Ctrl-C,
a missing TensorFlow, start-up noise and short runs. Real files, real processes and signals.

The command-line tests share one finished run (`finished_run`: conftest's `MECHANICS_MODEL` on
50 real CIFAR-10 images, 2 epochs of 2 steps, no --warmup_epochs) and start their processes in
parallel: most of their time is TensorFlow's start-up.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from training import config as config_lib
from training import keras_compat, recipes

from conftest import MECHANICS_MODEL, make_subset, shared_across_workers

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOISE = re.compile(
    r"cudart_stub|cpu_feature_guard|cuInit|absl::InitializeLog|GeneratorDataset|shuffle buffer"
    r"|fontManager|oneDNN"
)


def train_command(model_dir, data, *extra, model=(f"--model={MECHANICS_MODEL}",)):
    return [
        sys.executable,
        "-m",
        "training.train",
        f"--dataset=folder:{data}",
        *model,
        "--image_size=32",
        "--batch_size=25",
        "--epochs=2",
        "--steps_per_epoch=2",
        "--log_every=100",
        "--eval_every=0",
        "--seed=3",
        f"--model_dir={model_dir}",
        *extra,
    ]


def start(command, env=None, umask=None):
    """Starts ``command`` as a terminal starts a foreground job: Ctrl-C (SIGINT) at its
    default, whatever this process inherited (a non-interactive shell's background job, the
    suite started with ``&`` say, ignores SIGINT, and so would the run), with ``umask`` if
    given."""

    def prepare():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if umask is not None:
            os.umask(umask)

    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        preexec_fn=prepare,
    )


def finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def assert_one_error_line(code, err, *expected):
    assert code == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert len(lines(err)) == 1, err[-3000:]
    assert lines(err)[0].startswith("train: error: "), err
    for text in expected:
        assert text in err, err


@pytest.fixture(scope="module")
def tiny_cifar(cifar10_dir, tmp_path_factory):
    """5 training and 2 test images per class: 50 + 20 real CIFAR-10 images (one folder for
    all pytest-xdist workers, as the shared finished run's configuration names it)."""

    def make(root):
        make_subset(cifar10_dir, root, 5, splits=["train"])
        make_subset(cifar10_dir, root, 2, splits=["test"])

    return shared_across_workers(tmp_path_factory, "tiny_cifar", make)


@pytest.fixture(scope="module")
def finished_run(tiny_cifar, tmp_path_factory):
    """A finished 2-epoch run without --warmup_epochs (the default must fit a short run),
    under umask 002; returns (model_dir, exit code, stdout, stderr). Made once per session
    and only read: the tests that change a run change copies of it."""

    def make(directory):
        code, out, err = finish(start(train_command(directory / "run", tiny_cifar), umask=0o002))
        assert code == 0, err[-3000:]
        (directory / "stdout.txt").write_text(out)
        (directory / "stderr.txt").write_text(err)

    directory = shared_across_workers(tmp_path_factory, "finished_run", make)
    out, err = (directory / "stdout.txt").read_text(), (directory / "stderr.txt").read_text()
    return directory / "run", 0, out, err


def copy_run(finished_run, target):
    shutil.copytree(finished_run[0], target)
    return target


def checkpoints(model_dir):
    return sorted(
        (model_dir / "checkpoints").glob("ckpt-*.weights.h5"),
        key=lambda p: int(p.name.split("-")[1].split(".")[0]),
    )


def damage(path, size=200_000):
    """Overwrites `size` bytes in the middle of `path` (all of it if smaller) with noise."""
    data = bytearray(path.read_bytes())
    size = min(size, len(data) // 2)
    start = (len(data) - size) // 2
    data[start : start + size] = np.random.default_rng(0).bytes(size)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# Settings (fast, no TensorFlow)


def test_flags_derive_from_the_one_declaration():
    from training import train

    declared = {f.name for f in config_lib.settings()}
    flagged = {f.name for f in config_lib.flag_settings()}
    assert flagged <= declared and declared - flagged == {"base_learning_rate", "base_batch_size"}
    for name in flagged:  # every setting with a flag has one, with the declared choices
        flag = train.FLAGS[name]
        assert flag.default is None, name
        choices = config_lib.TrainConfig.__dataclass_fields__[name].metadata["choices"]
        if choices:
            assert list(flag.parser.enum_values) == list(choices)
    assert set(recipes.DEFAULTS) == declared
    for recipe in recipes.RECIPES.values():  # recipes set declared settings only
        assert set(recipe) <= declared
    assert "(default: 256)" in train.FLAGS["batch_size"].help
    assert "0.1 x --epochs" in train.FLAGS["warmup_epochs"].help


def test_default_warmup_fits_short_runs_and_keeps_the_paper_recipe():
    def make(recipe=None, **settings):
        return recipes.make_config(recipe, dataset="cifar10", model_dir="/x", **settings)

    assert make(epochs=2).warmup_epochs == pytest.approx(0.2)  # failed before: 5 >= 2 epochs
    assert make(epochs=1).warmup_epochs == pytest.approx(0.1)
    assert make().warmup_epochs == 5.0  # 100 epochs: the paper's 5
    assert make(epochs=2, lr_schedule="step", lr_decay_epochs="1").warmup_epochs == 0.0
    imagenet = make("ghostnet_imagenet")
    assert (imagenet.warmup_epochs, imagenet.epochs) == (5.0, 400)
    assert make("ghostnet_imagenet", epochs=2, warmup_epochs=1).warmup_epochs == 1
    with pytest.raises(ValueError, match="Received: lr_decay_epochs=a,b"):
        make(lr_schedule="step", lr_decay_epochs=["a", "b"])


def test_keras_workarounds_are_guarded_and_name_their_issue():
    for workaround in keras_compat.WORKAROUNDS:
        assert re.fullmatch(r"keras-team/keras#\d+", workaround.issue)
        assert workaround.applies("3.15.1")
        fixed = keras_compat.Workaround(workaround.name, workaround.issue, (3, 0, 0), (3, 16, 0))
        assert fixed.applies("3.15.1") and not fixed.applies("3.16.0")
        assert not fixed.applies("3.17.0.dev2026")
    assert keras_compat.keras_version("3.15.1") == (3, 15, 1)


# ---------------------------------------------------------------------------------------------
# Checkpoints in process (a tiny model, real files)


def _tiny_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _save_steps(directory, model, steps):
    """Checkpoints after each of `steps` fit steps; returns the weights at each of them."""
    from training import checkpoint

    saver = checkpoint.ResumableCheckpoint(directory, keep=3)
    saver.set_model(model)
    rng = np.random.default_rng(0)
    saved = {}
    for step in range(1, steps + 1):
        model.fit(rng.normal(size=(4, 8, 8, 3)), rng.normal(size=(4, 2)), verbose=0)
        saver.steps = step
        saver.save()
        saved[step] = [np.array(w) for w in model.get_weights()]
    return saved


def _restore(directory):
    from training import checkpoint

    notes = []
    model = _tiny_model()
    state = checkpoint.ResumableCheckpoint(directory, printer=notes.append).restore(model)
    return state, model, notes


def _same(weights, model):
    return all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))


def test_damaged_or_truncated_checkpoint_is_skipped_for_the_newest_intact(tmp_path):
    """A damaged latest checkpoint is never loaded (its SHA-256 differs from its record); a
    truncated one neither; resuming falls back to the newest intact one and says which file
    it skipped and why. Before: the damaged weights were loaded without a word."""
    saved = _save_steps(tmp_path, _tiny_model(), 3)
    state, model, notes = _restore(tmp_path)
    assert state["step"] == 3 and _same(saved[3], model) and not notes
    record = json.loads((tmp_path / "state.json").read_text())
    assert record["sha256"] and record["size"] == (tmp_path / "ckpt-3.weights.h5").stat().st_size
    assert record == json.loads((tmp_path / "ckpt-3.json").read_text())

    damage(tmp_path / "ckpt-3.weights.h5", size=64)
    state, model, notes = _restore(tmp_path)
    assert state["step"] == 2 and _same(saved[2], model)
    assert len(notes) == 1 and "ckpt-3.weights.h5" in notes[0] and "SHA-256" in notes[0]

    with open(tmp_path / "ckpt-2.weights.h5", "r+b") as f:
        f.truncate(1000)
    state, model, notes = _restore(tmp_path)
    assert state["step"] == 1 and _same(saved[1], model)
    assert any("ckpt-2.weights.h5" in n and "truncated" in n for n in notes)


def test_invalid_state_file_falls_back_to_the_checkpoint_records(tmp_path):
    """state.json that is not JSON (before: "Expecting ',' delimiter" and no resume)."""
    saved = _save_steps(tmp_path, _tiny_model(), 2)
    (tmp_path / "state.json").write_text('{"step": 2 "checkpoint"')
    state, model, notes = _restore(tmp_path)
    assert state["step"] == 2 and _same(saved[2], model)
    assert len(notes) == 1 and "state.json" in notes[0] and "not valid JSON" in notes[0]


def test_no_intact_checkpoint_is_one_message_naming_the_files(tmp_path):
    from training import checkpoint

    _save_steps(tmp_path, _tiny_model(), 2)
    damage(tmp_path / "ckpt-2.weights.h5", size=64)
    (tmp_path / "ckpt-1.weights.h5").write_bytes(b"")
    with pytest.raises(checkpoint.NoIntactCheckpointError) as error:
        _restore(tmp_path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 600
    assert "ckpt-2.weights.h5: damaged" in message and "ckpt-1.weights.h5: truncated" in message
    assert "delete or move away" in message and f"Received: model_dir={tmp_path.parent}" in message


def test_run_lock_refuses_a_second_holder_and_takes_over_a_dead_ones(tmp_path):
    from training import run_dir

    with run_dir.RunLock(tmp_path):
        held = json.loads((tmp_path / ".lock").read_text())
        assert held["pid"] == os.getpid()
        with pytest.raises(ValueError, match=f"pid {os.getpid()}"):
            run_dir.RunLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    (tmp_path / ".lock").write_text(
        json.dumps({"pid": int(gone.stdout), "host": "h", "started": 0, "command": "x"})
    )
    with run_dir.RunLock(tmp_path):  # the process is gone: its lock does not block
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


# ---------------------------------------------------------------------------------------------
# The command line, real processes


def test_missing_tensorflow_names_the_extra_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['tensorflow'] = None; "
        f"sys.argv = ['train', '--dataset=cifar10', '--model_dir={tmp_path}']; "
        "from training import train; train.cli()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    # The hint names the extra as this install can take it (ghostnet_keras.extras).
    assert_one_error_line(result.returncode, result.stderr, "pip install ", "[train]")


@pytest.mark.slow
def test_short_run_with_default_warmup_is_quiet_and_keeps_the_umask(finished_run):
    """`--epochs=2` without --warmup_epochs trains (the default warm-up was 5 epochs); no
    TensorFlow C++ lines or library notes; files get the umask's permissions (002 -> 664)."""
    model_dir, code, out, err = finished_run
    assert code == 0
    assert not NOISE.search(err), err
    assert f"Training {MECHANICS_MODEL}" in out
    written = [
        model_dir / "model.keras",
        model_dir / "metrics.json",
        model_dir / "config.json",
        model_dir / "checkpoints" / "state.json",
        *checkpoints(model_dir),
    ]
    for path in written:
        assert (path.stat().st_mode & 0o777) == 0o664, path
    assert not list(model_dir.rglob(".tmp-*")) and not (model_dir / ".lock").exists()


@pytest.mark.slow
def test_damaged_checkpoints_mismatched_model_and_stale_lock(finished_run, tiny_cifar, tmp_path):
    """In parallel, on copies of a finished run:
    - the latest checkpoint damaged (200 kB overwritten): the rerun skips it, names it, and
      resumes from the older one (before: it loaded it and overwrote model.keras);
    - both checkpoints damaged: one line naming both files and the way out, exit 2;
    - --model=resnet56 on the run of another model: one short line from config.json (before:
      a 58 KB line of tensor values);
    - a lock file left by a process that is gone: no obstacle.
    """
    damaged = copy_run(finished_run, tmp_path / "damaged")
    damage(checkpoints(damaged)[-1])
    hopeless = copy_run(finished_run, tmp_path / "hopeless")
    for path in checkpoints(hopeless):
        damage(path)
    other_model = copy_run(finished_run, tmp_path / "other_model")
    stale = copy_run(finished_run, tmp_path / "stale")
    (stale / ".lock").write_text(json.dumps({"pid": 2**22 + 1, "host": "x", "started": 0}))

    runs = {
        "damaged": start(train_command(damaged, tiny_cifar)),
        "hopeless": start(train_command(hopeless, tiny_cifar)),
        "other_model": start(train_command(other_model, tiny_cifar, model=["--model=resnet56"])),
        "stale": start(train_command(stale, tiny_cifar)),
    }
    results = {name: finish(process) for name, process in runs.items()}

    code, out, err = results["damaged"]
    assert code == 0, err[-3000:]
    latest = checkpoints(finished_run[0])[-1].name
    assert f"Skipped {damaged / 'checkpoints' / latest}: damaged" in out
    metrics = json.loads((damaged / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 4

    code, out, err = results["hopeless"]
    assert_one_error_line(code, err, "No intact checkpoint", "ckpt-2.weights.h5: damaged")
    assert "ckpt-4.weights.h5: damaged" in err and "delete or move away" in err

    code, out, err = results["other_model"]
    assert_one_error_line(code, err, f"model={MECHANICS_MODEL}", "Received: model=resnet56")
    assert len(err) < 500

    code, out, err = results["stale"]
    assert code == 0, err[-3000:]
    assert "Already finished" in out  # the lock did not block: the run was looked at


@pytest.mark.slow
def test_rerun_of_a_finished_run_says_so_and_changes_nothing(finished_run, tiny_cifar, tmp_path):
    """The same command again on a finished run: one line saying so, exit 0, no file
    rewritten (before: it silently evaluated again and rewrote model.keras and
    metrics.json). With fewer --epochs than the run has: one error line (before: a
    RuntimeError traceback). Issue 23, item 20."""
    again = copy_run(finished_run, tmp_path / "again")
    fewer = copy_run(finished_run, tmp_path / "fewer")
    before = {p: p.read_bytes() for p in again.rglob("*") if p.is_file()}
    runs = {
        "again": start(train_command(again, tiny_cifar)),
        "fewer": start(train_command(fewer, tiny_cifar, "--epochs=1")),
    }
    results = {name: finish(process) for name, process in runs.items()}

    code, out, err = results["again"]
    assert code == 0, err[-3000:]
    assert lines(out) == [
        f"Already finished: {again} holds this run, trained for all its 4 steps, accuracy "
        f"{json.loads(before[again / 'metrics.json'])['accuracy']:.4f} (model.keras, "
        "metrics.json); nothing to do (use a new --model_dir, or more --epochs to train on)."
    ], out
    assert not lines(err), err[-3000:]
    assert {p: p.read_bytes() for p in again.rglob("*") if p.is_file()} == before

    code, out, err = results["fewer"]
    assert_one_error_line(code, err, "at step 4, past the 2 steps", "Received: epochs=1")


@pytest.mark.slow
def test_second_run_is_refused_and_ctrl_c_says_where_to_resume(tiny_cifar, tmp_path):
    """A run holds its model directory: a second run on it is refused at once, naming the
    first (before: they deleted each other's files). Ctrl-C (SIGINT) then ends the first with
    one line naming the checkpoint to resume from, exit 130 (before: a 60-line traceback)."""
    model_dir = tmp_path / "run"
    first = start(
        [*train_command(model_dir, tiny_cifar, "--save_every=1"), "--epochs=2000"],
    )
    state = model_dir / "checkpoints" / "state.json"
    deadline = time.time() + 600
    while not state.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert state.exists(), first.communicate()[1][-3000:]
    second = subprocess.run(
        train_command(model_dir, tiny_cifar),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert_one_error_line(second.returncode, second.stderr, f"pid {first.pid}")
    assert first.poll() is None  # the first run is untouched
    first.send_signal(signal.SIGINT)
    code, out, err = finish(first, timeout=300)
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and len(lines(err)) == 1, err[-3000:]
    assert re.search(
        r"train: interrupted; run the same command again to resume from .*ckpt-\d+", err
    )
    assert not (model_dir / ".lock").exists() and not list(model_dir.rglob(".tmp-*"))


@pytest.mark.slow
def test_ctrl_c_saves_the_running_step_and_the_rerun_resumes_there(tiny_cifar, tmp_path):
    """The first Ctrl-C lets the running step end and checkpoints it (before: the run lost
    every step since the last epoch end; here, with 10-step epochs and the signal sent after
    the first step, it had no checkpoint at all). Issue 23, item 16.

    No timing: the signal goes after the run has printed its first step's line (so the
    handler is installed); whichever step it then interrupts is the last step line printed,
    and the checkpoint, the one-line message and the resumed run must all name that step."""
    model_dir = tmp_path / "run"
    steps = ("--batch_size=5", "--steps_per_epoch=10")
    run = start([*train_command(model_dir, tiny_cifar, *steps, "--log_every=1"), "--epochs=99"])
    out = []
    for line in iter(run.stdout.readline, ""):
        out.append(line)
        if line.startswith("step "):
            break
    assert out and out[-1].startswith("step "), run.communicate()[1][-3000:]
    run.send_signal(signal.SIGINT)
    out.append(run.stdout.read())  # read to the end; the run writes little to stderr
    err = run.stderr.read()
    assert run.wait(timeout=300) == 130, err[-3000:]
    step = max(int(n) for n in re.findall(r"^step (\d+)/", "".join(out), re.MULTILINE))
    state = json.loads((model_dir / "checkpoints" / "state.json").read_text())
    assert state["step"] == step and state["checkpoint"] == f"ckpt-{step}.weights.h5"
    assert len(lines(err)) == 1 and f"ckpt-{step}.weights.h5 (step {step})" in err, err
    assert not (model_dir / ".lock").exists() and not list(model_dir.rglob(".tmp-*"))

    epochs = step // 10 + 1  # the rerun ends with the interrupted epoch
    rerun = train_command(model_dir, tiny_cifar, *steps, f"--epochs={epochs}")
    code, out, err = finish(start(rerun))
    assert code == 0, err[-3000:]
    assert f"Resuming from {model_dir / 'checkpoints' / state['checkpoint']} at step {step}/" in out
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == step and metrics["steps"] == 10 * epochs


def _mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        pytest.skip(f"cannot mount a small tmpfs for a real full disk: {result.stderr.strip()}")


@pytest.mark.slow
def test_full_disk_during_a_checkpoint_is_one_line_and_leaves_the_last_good_state(
    finished_run, tiny_cifar, tmp_path
):
    """A real full disk (a tmpfs with room for one checkpoint, not two): one line, exit 2, no
    partial temporary file, and the last good checkpoint still matches its record (before:
    an h5py traceback, a segfault, and a 9.6 MB temporary file left behind)."""
    size = checkpoints(finished_run[0])[-1].stat().st_size
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, size * 3 // 2 + 256 * 1024)
    try:
        model_dir = disk / "run"
        code, out, err = finish(start(train_command(model_dir, tiny_cifar)))
        assert_one_error_line(code, err, "No space left on device")
        assert not list(model_dir.rglob(".tmp-*"))
        state = json.loads((model_dir / "checkpoints" / "state.json").read_text())
        from training import checkpoint

        good = model_dir / "checkpoints" / state["checkpoint"]
        assert checkpoint.file_sha256(good) == state["sha256"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
