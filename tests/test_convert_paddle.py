"""PaddleClas GhostNet weights: the ``.pdparams`` reader (no PaddlePaddle) and the
``paddleclas`` variant of GhostNet, against PaddlePaddle's own computation.

The reference (``paddle_reference.py``, PaddleClas's network written from its facts, random
weights and random BatchNorm statistics) runs in a subprocess: PaddlePaddle crashes when it
is imported after TensorFlow.
"""

import importlib.util
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

import ghostnet_keras
from ghostnet_keras import convert_weights
from ghostnet_keras.converters import readers

HERE = pathlib.Path(__file__).resolve().parent
TOLERANCE = 1e-4


def paddle_reference(scale, images, out_dir):
    """Runs the PaddleClas reference; returns (the .pdparams path, its logits)."""
    if importlib.util.find_spec("paddle") is None:
        pytest.skip("the PaddleClas reference needs paddlepaddle (pip install paddlepaddle)")
    np.save(out_dir / "images.npy", images)
    env = {**os.environ, "GLOG_minloglevel": "2"}
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "paddle_reference.py"),
            str(scale),
            str(out_dir / "images.npy"),
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out_dir / "model.pdparams", np.load(out_dir / "logits.npy")


@pytest.fixture(scope="module")
def images(imagenette_dir):
    from torch_reference import reference_images

    return reference_images(imagenette_dir, size=64, n_random=1)[[0, 3, 7, 10]]


@pytest.mark.parametrize("name, scale", [("ghostnet_050", 0.5), ("ghostnet_130", 1.3)])
def test_parity_with_paddleclas(name, scale, images, tmp_path):
    checkpoint, expected = paddle_reference(scale, images, tmp_path)
    output = tmp_path / f"{name}.weights.h5"
    assert (
        convert_weights.main(
            [f"--checkpoint={checkpoint}", f"--model={name}", f"--output={output}"]
        )
        == 0
    )
    model = ghostnet_keras.create_model(
        name,
        variant="paddleclas",
        weights=output,
        input_shape=(64, 64, 3),
        classifier_activation=None,
    )
    actual = model(images, training=False).numpy()
    diff = np.abs(actual - expected).max()
    print(f"{name} (PaddleClas): max |logit difference| {diff:.2e}")
    assert diff <= TOLERANCE
    np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1))


def test_reader_needs_no_paddle_and_refuses_code(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "paddle", None)  # `import paddle` would fail
    arrays = {"conv1._conv.weight": np.arange(6, dtype="float32").reshape(1, 1, 2, 3)}
    plain = tmp_path / "plain.pdparams"
    plain.write_bytes(pickle.dumps({**arrays, readers.PADDLE_NAME_TABLE: {"a": "b"}}, protocol=2))
    # Newer PaddlePaddle versions pickle each tensor as a (name, array) tuple.
    tuples = tmp_path / "tuples.pdparams"
    tuples.write_bytes(
        pickle.dumps({k: ("conv2d_0.w_0", v) for k, v in arrays.items()}, protocol=4)
    )
    for path in (plain, tuples):
        tensors = readers.read_state_dict(path)
        assert list(tensors) == list(arrays)
        np.testing.assert_array_equal(tensors["conv1._conv.weight"], arrays["conv1._conv.weight"])

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"conv1._conv.weight": Exploit()}))
    with pytest.raises(ValueError, match="refusing to load"):
        readers.read_state_dict(evil)
    assert not (tmp_path / "pwned").exists()
    truncated = tmp_path / "truncated.pdparams"
    truncated.write_bytes(plain.read_bytes()[:40])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        readers.read_state_dict(truncated)


def test_default_network_is_the_paper_one():
    model = ghostnet_keras.GhostNet050(input_shape=(64, 64, 3))
    paddle = ghostnet_keras.GhostNet050(input_shape=(64, 64, 3), variant="paddleclas")
    # SE width: the paper's make_divisible(c / 4, 4), PaddleClas's c // 4 (36 -> 12 vs 9 in
    # the first SE bottleneck at 0.5x); the head: a biased Dense vs Dense + BatchNorm.
    assert model.get_layer("blocks_3_0_se_reduce").filters == 12
    assert paddle.get_layer("blocks_3_0_se_reduce").filters == 9
    assert model.get_layer("head").use_bias and "head_bn" not in {x.name for x in model.layers}
    assert not paddle.get_layer("head").use_bias and paddle.get_layer("head_bn")
    with pytest.raises(ValueError, match="Received: variant='paddle'"):
        ghostnet_keras.GhostNet050(variant="paddle")
