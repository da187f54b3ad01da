"""The export-graph rewrite, the op census, XNNPACK delegation and the benchmark CLI.

Properties, never timings: the rewritten graph computes the same function as the Keras
model; the converted C-GhostNet-1.0 runs every op in XNNPACK (float32 and int8) and its int8
file stays within 1.15 bytes per parameter.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest

import ghostnet_keras

from conftest import ROOT, load_image_folder

pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT (ai-edge-litert) is needed")

from tflite import benchmark, latency, optimize  # noqa: E402
from tflite import flatbuffer as fb  # noqa: E402
from tflite.convert import convert_model  # noqa: E402

if str(ROOT) not in sys.path:  # benchmarks/ is no package: import it from the checkout
    sys.path.insert(0, str(ROOT))
from benchmarks import tflite_rewrites  # noqa: E402

# Every rewrite: the named defaults and the two that measurements rejected (benchmarks/).
ALL_REWRITES = (*optimize.REWRITES, *tflite_rewrites.REJECTED.values())


def _randomize_batch_norms(model, seed=0):
    """Non-trivial BN statistics, so that folding them is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n),
                    rng.normal(0.0, 0.2, n),
                    rng.normal(0.0, 0.2, n),
                    rng.uniform(0.5, 1.5, n),
                ]
            )


def _run_tflite(flatbuffer, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    out = []
    for image in x:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        out.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    return np.stack(out)


_MODELS = {}


def _random_model(builder, shape):
    """The model with random weights and BN statistics, built once for both rewrite sets
    (four small models kept for the module)."""
    if builder not in _MODELS:
        keras.utils.set_random_seed(0)
        model = builder(input_shape=shape, classifier_activation=None)
        _randomize_batch_norms(model)
        _MODELS[builder] = model
    return _MODELS[builder]


@pytest.mark.parametrize(
    "builder,shape",
    [
        (ghostnet_keras.GhostNet050, (64, 64, 3)),
        (ghostnet_keras.GhostNet100, (96, 96, 3)),
        (ghostnet_keras.GhostNet130, (64, 64, 3)),
        (ghostnet_keras.GGhostNet050, (32, 32, 3)),
    ],
)
@pytest.mark.parametrize("rewrites", ["default", "all"])
def test_export_graph_is_equivalent(builder, shape, rewrites):
    model = _random_model(builder, shape)
    if rewrites == "default":
        exported = optimize.export_graph(model)
    else:
        exported = optimize.export_graph(model, rewrites=ALL_REWRITES)
    names = [layer.name for layer in exported.layers]
    if builder is not ghostnet_keras.GGhostNet050:
        # A stride-2 bottleneck's depthwise conv moved before its concatenation and (not a
        # default) a projection split over the concatenation.
        assert any(name.endswith("dw_conv_export_1") for name in names)
        assert any(name.endswith("_export_sum") for name in names) == (rewrites == "all")
    kinds = {type(layer).__name__ for layer in exported.layers}
    # The rewrites applied: no normalisation, no BN left; weights untouched in the original.
    assert "Normalization" not in kinds and "BatchNormalization" not in kinds
    assert "PadWithValues" in kinds
    assert exported.input_shape == (1, *shape)
    x = np.random.default_rng(1).uniform(0, 255, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = np.concatenate([keras.ops.convert_to_numpy(exported(x[i : i + 1])) for i in range(2)])
    scale = np.abs(expected).max()
    assert scale > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, scale), rtol=0)


def test_every_rewrite_at_224_is_equivalent():
    """All rewrites at once, the narrow-ghost one (112x112 only) included."""
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.GhostNet050(classifier_activation=None)
    _randomize_batch_norms(model)
    exported = optimize.export_graph(model, rewrites=ALL_REWRITES)
    names = [layer.name for layer in exported.layers]
    assert sum(name.endswith("_export_twice") for name in names) == 2
    x = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(exported(x))
    scale = np.abs(expected).max()
    assert scale > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, scale), rtol=0)


def test_export_graph_keeps_a_plain_model_and_rejects_non_functional():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    exported = optimize.export_graph(model)
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(exported(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="Received: model="):
        optimize.export_graph("ghostnet_100")
    with pytest.raises(ValueError, match="Received: rewrites='stem'"):
        optimize.export_graph(model, rewrites="stem")


def _tiny_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, x)


def test_op_census_of_a_known_model():
    keras.utils.set_random_seed(0)
    flatbuffer = convert_model(_tiny_model())
    census = fb.op_census(flatbuffer)
    assert census == {
        "CONV_2D": 1,
        "DEPTHWISE_CONV_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
    }
    d = latency.delegation(flatbuffer)
    assert (d["delegated"], d["total"], d["partitions"]) == (5, 5, 1)
    with pytest.raises(ValueError, match="The model is not a TFLite model .* first bytes="):
        fb.op_census(b"not a flatbuffer at all")


def test_single_op_models_recompose_the_model():
    """Each op alone computes what it computes inside the whole model."""
    keras.utils.set_random_seed(0)
    flatbuffer = convert_model(_tiny_model())
    parts = fb.single_op_models(flatbuffer)
    assert [name for name, _, _ in parts] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert [shape for _, shape, _ in parts] == [
        (1, 16, 16, 8),
        (1, 16, 16, 8),
        (1, 8),
        (1, 10),
        (1, 10),
    ]
    # Chain the single-op models: the last output equals the whole model's.
    x = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype("float32")
    y = x
    for _, _, blob in parts:
        interpreter = latency.load_interpreter(blob)
        (detail,) = interpreter.get_input_details()
        interpreter.set_tensor(detail["index"], y.reshape(detail["shape"]))
        interpreter.invoke()
        y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    whole = latency.load_interpreter(flatbuffer)
    whole.set_tensor(whole.get_input_details()[0]["index"], x)
    whole.invoke()
    expected = whole.get_tensor(whole.get_output_details()[0]["index"])
    np.testing.assert_allclose(y, expected, atol=1e-6)
    rows = latency.op_profile(flatbuffer, runs=3)
    assert [r["op"] for r in rows] == [name for name, _, _ in parts]
    assert all(r["ms"] > 0 for r in rows)


def test_profile_segments_cut_a_residual_model_at_its_adds():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Add()([x, keras.layers.Conv2D(4, 1)(x)])
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    flatbuffer = convert_model(keras.Model(inputs, x))
    parts = fb.truncated_models(flatbuffer)
    assert [dict(segment) for _, segment, _ in parts] == [
        {"CONV_2D": 2, "ADD": 1},
        {"DEPTHWISE_CONV_2D": 1},
    ]
    first = _run_tflite(parts[0][2], np.ones((1, 16, 16, 4), "float32"))
    assert first.shape == (1, 16, 16, 4)
    rows = latency.profile_segments(flatbuffer, runs=3)
    assert len(rows) == 2 and rows[-1]["cumulative_ms"] > 0


def test_float_softmax_delegates_the_int8_softmax():
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    images = np.random.default_rng(0).uniform(0, 255, (20, 16, 16, 3)).astype("float32")
    # uint8 io (the README's main job): the int8 probabilities are requantized to uint8; with
    # the softmax in float, that QUANTIZE takes floats and XNNPACK runs it too. Only the
    # input's uint8-to-int8 QUANTIZE stays on the reference kernel.
    left = {"float": {}, "int8": {}, "uint8": {"QUANTIZE": 1}}
    for io, expected in left.items():
        flatbuffer = convert_model(model, quantize="int8", io=io, representative_images=images)
        before = latency.delegation(flatbuffer)
        # XNNPACK has no int8 softmax
        assert before["not_delegated"]["SOFTMAX"] == 1, (io, before)
        rewritten = fb.float_softmax(flatbuffer)
        after = latency.delegation(rewritten)
        assert after["not_delegated"] == expected, (io, after)
        assert after["delegated"] == after["total"] - len(expected) and after["partitions"] == 1
        x = {
            "float": images[:4],
            "int8": (images[:4] - 128).astype("int8"),
            "uint8": images[:4].astype("uint8"),
        }[io]
        a, b = _run_tflite(flatbuffer, x), _run_tflite(rewritten, x)
        assert a.dtype == b.dtype
        scale = 1.0 if io == "float" else 256.0
        np.testing.assert_allclose(b / scale, a / scale, atol=1.5 / 256)


@pytest.fixture(scope="module")
def ghostnet100_real_images(imagenette_dir):
    images, _ = load_image_folder(imagenette_dir / "train", 2, size=224)
    return images


@pytest.fixture(scope="module")
def ghostnet100():
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.GhostNet100()
    _randomize_batch_norms(model)
    return model


def test_float_depthwise_delegates_the_dynamic_range_depthwise_convs():
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.GhostNet050(input_shape=(64, 64, 3), classifier_activation=None)
    _randomize_batch_norms(model)
    hybrid = convert_model(model, quantize="dynamic")
    before = latency.delegation(hybrid)
    # The 5x5 kernels of the last stage (336 channels) have int8 weights: hybrid ops.
    assert before["not_delegated"]["DEPTHWISE_CONV_2D"] >= 4
    rewritten = fb.float_depthwise(hybrid)
    after = latency.delegation(rewritten)
    assert after["delegated"] == after["total"] == before["total"]
    assert after["partitions"] == 1
    assert len(rewritten) - len(hybrid) < 0.05 * len(hybrid)
    assert fb.float_depthwise(rewritten) == rewritten  # nothing left to rewrite
    # Same int8-derived weights, float activations: at least as close to Keras as before.
    x = np.random.default_rng(2).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))

    def run(flatbuffer):
        interpreter = latency.load_interpreter(flatbuffer)
        index = interpreter.get_input_details()[0]["index"]
        output = interpreter.get_output_details()[0]["index"]
        outputs = []
        for image in x:
            interpreter.set_tensor(index, image[None])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(output)[0])
        return np.stack(outputs)

    error_before = np.abs(run(hybrid) - expected).max()
    error_after = np.abs(run(rewritten) - expected).max()
    assert error_after <= error_before * 1.05 + 1e-6
    assert error_after < 0.1 * max(1.0, np.abs(expected).max())


def test_ghostnet100_float32_fully_delegated_and_equal(ghostnet100, ghostnet100_real_images):
    flatbuffer = benchmark.convert_for_benchmark(ghostnet100, "none")
    d = latency.delegation(flatbuffer)
    assert d["delegated"] == d["total"] and d["partitions"] == 1, d
    census = fb.op_census(flatbuffer)
    assert "SUB" not in census and "MINIMUM" not in census  # normalisation and gate folded
    x = ghostnet100_real_images[:4]
    expected = keras.ops.convert_to_numpy(ghostnet100(x, training=False))
    np.testing.assert_allclose(_run_tflite(flatbuffer, x), expected, atol=1e-4, rtol=0)


def test_ghostnet100_int8_fully_delegated_and_small(ghostnet100, ghostnet100_real_images):
    flatbuffer = benchmark.convert_for_benchmark(
        ghostnet100, "int8", calibration=ghostnet100_real_images
    )
    d = latency.delegation(flatbuffer)
    assert d["delegated"] == d["total"] and d["partitions"] == 1, d
    params = ghostnet_keras.profile(ghostnet100)["params"]
    assert len(flatbuffer) <= 1.15 * params, (len(flatbuffer), params)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tflite.benchmark", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_times_a_tiny_model_and_prints_the_table(tmp_path):
    keras.utils.set_random_seed(0)
    path = tmp_path / "tiny.tflite"
    path.write_bytes(convert_model(_tiny_model()))
    result = _cli(str(path), str(path), "--runs=5", "--warmup=1", "--census", "--op_profile")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("| model | quantization | MACs") for line in lines)
    rows = [line for line in lines if line.startswith("| tiny.tflite |")]
    assert len(rows) == 2 and all("| 5/5 |" in row for row in rows)
    assert "tiny.tflite ((file)): CONV_2D 1" in result.stdout
    assert "Ops of tiny.tflite ((file)), each timed alone:" in result.stdout
    assert sum(line.lstrip().startswith("DEPTHWISE_CONV_2D  ") for line in lines) == 2


def test_latency_script_retimes_saved_files_and_keeps_the_notes(tmp_path):
    # benchmarks/tflite_latency.py --reuse: the timing and report half of the README's
    # latency table, on a tiny model (the conversion half is convert_for_benchmark, above).
    from benchmarks import tflite_latency
    from ghostnet_keras import files

    keras.utils.set_random_seed(0)
    model = _tiny_model()
    flatbuffer = convert_model(model)
    row = benchmark._row("tiny", "none", flatbuffer, model)
    for key in ("flatbuffer", "flatbuffer_for_profile", "census"):
        row.pop(key)
    row["label"] = "tiny"
    (tmp_path / "00.tflite").write_bytes(flatbuffer)
    files.write_json(tmp_path / "rows.json", [row])
    output = tmp_path / "latency.md"
    output.write_text(f"# old table\n\n{tflite_latency.NOTES_MARKER}\nhand-written notes\n")
    args = ["--calibration_data=unused", f"--save_dir={tmp_path}", "--reuse", "--runs=3"]
    assert tflite_latency.main([*args, "--warmup=1", f"--output={output}"]) == 0
    text = output.read_text()
    assert "| tiny | none |" in text and "| 1.00 | 1.00 |" in text
    assert "old table" not in text and text.endswith("hand-written notes\n")
    assert benchmark.cpu_description() in text


def test_cli_rejects_a_file_that_is_not_tflite(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("hello, this is not a model")
    result = _cli(str(path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path} is not a TFLite model")
    result = _cli("no_such_model")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: Not a .tflite file")
    # A truncated model (a copy cut short): the error names the file.
    keras.utils.set_random_seed(0)
    whole = convert_model(_tiny_model())
    path = tmp_path / "cut.tflite"
    path.write_bytes(whole[: len(whole) // 2])
    result = _cli(str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path} is damaged or not a TFLite model: LiteRT cannot")


@pytest.mark.parametrize(
    "machine, cpuinfo, expected",
    [
        (
            "x86_64",
            "model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma f16c\n",
            "AMD EPYC (x86_64): AVX2, FMA; no AVX-512, no VNNI",
        ),
        (
            "x86_64",
            "model name\t: Xeon\nflags\t\t: avx2 fma avx512f avx512bw avx512_vnni\n",
            "Xeon (x86_64): AVX2, FMA, AVX-512, AVX-512 VNNI",
        ),
        (
            "aarch64",
            "processor\t: 0\nFeatures\t: fp asimd fphp asimddp i8mm\nModel\t: Pixel\n",
            "Pixel (aarch64): NEON, dot product, i8mm, fp16",
        ),
    ],
)
def test_cpu_description_names_the_simd_extensions(tmp_path, machine, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert benchmark.cpu_description(str(path), machine=machine) == expected
