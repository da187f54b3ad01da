"""Hostile and mismatched weight files: each gives one clear error, allocates nothing big
and deletes nothing of the user's. Every file here is crafted by the test, and small."""

import errno
import os
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from ghostnet_keras import convert_weights


def _mobilenetv3_like():
    """A few tensors named as in timm's MobileNetV3 (conv_stem, blocks.0.0.conv_dw, ...):
    no converter recognises it."""
    rng = np.random.default_rng(0)
    shapes = {
        "conv_stem.weight": (16, 3, 3, 3),
        "bn1.weight": (16,),
        "bn1.bias": (16,),
        "blocks.0.0.conv_dw.weight": (16, 1, 3, 3),
        "blocks.0.0.conv_pw.weight": (16, 16, 1, 1),
        "blocks.6.0.conv.weight": (960, 160, 1, 1),
        "conv_head.weight": (1280, 960, 1, 1),
        "classifier.weight": (1000, 1280),
    }
    return {k: rng.standard_normal(s).astype("float32") for k, s in shapes.items()}


def test_checkpoint_of_an_unknown_family_is_one_clear_error(tmp_path, capsys):
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
    checkpoint = tmp_path / "mobilenetv3.safetensors"
    safetensors_numpy.save_file(_mobilenetv3_like(), str(checkpoint))
    output = tmp_path / "out.weights.h5"
    args = [f"--checkpoint={checkpoint}", "--model=ghostnet_100", f"--output={output}"]
    assert convert_weights.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: mobilenetv3.safetensors does not match ghostnet_100")
    assert "It does not look like a checkpoint of the official C-GhostNet" in err
    assert not output.exists()


def _peak_bytes(fn):
    """``fn()``'s exception and the peak of memory traced while it ran (numpy's included)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_pdparams_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    # 2 GB declared by a pickle of about 100 bytes that calls the allowed numpy.ndarray.
    hostile = (
        b"\x80\x02}X\x01\x00\x00\x00wcnumpy\nndarray\nJ\x80\xb2\xe6\x0e\x85cnumpy\ndtype\n"
        b"X\x02\x00\x00\x00f8\x85R\x86Rs."
    )
    path = tmp_path / "hostile.pdparams"
    path.write_bytes(hostile)
    assert len(hostile) < 128
    err, peak = _peak_bytes(lambda: convert_weights.read_state_dict(path))
    message = str(err)
    assert "\n" not in message and message.startswith(f"Cannot read {path}: the file declares")
    assert "(250000000,)" in message and "float64" in message
    assert peak < 10_000_000  # nothing near the 2 GB declared


def test_pdparams_within_its_size_still_reads(tmp_path):
    path = tmp_path / "ok.pdparams"
    arrays = {"fc.w_0": np.arange(6, dtype="float64").reshape(2, 3), "fc.b_0": np.ones(3, "f2")}
    path.write_bytes(pickle.dumps({**arrays, "StructuredToParameterName@@": {}}, protocol=2))
    read = convert_weights.read_state_dict(path)
    assert sorted(read) == ["fc.b_0", "fc.w_0"] and read["fc.w_0"].dtype == np.float32
    np.testing.assert_array_equal(read["fc.w_0"], arrays["fc.w_0"])


def _never_load(monkeypatch, torch):
    def load(*args, **kwargs):
        raise AssertionError("torch.load ran on a file that declares more than it holds")

    monkeypatch.setattr(torch, "load", load)


def test_pth_zip_with_a_compressed_huge_storage_is_refused_before_reading(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch", reason="needs PyTorch")
    plain = tmp_path / "plain.pth"
    torch.save({"fc.weight": torch.zeros(4_000_000)}, plain)  # 16 MB stored uncompressed
    hostile = tmp_path / "deflated.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert hostile.stat().st_size < 100_000
    _never_load(monkeypatch, torch)
    with pytest.raises(ValueError) as info:
        convert_weights.read_state_dict(hostile)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"Cannot read {hostile}: it declares")
    assert "more than its" in message and "nothing was allocated" in message


def test_legacy_pth_declaring_a_huge_storage_is_refused(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch", reason="needs PyTorch")
    from torch import serialization

    class Storage:  # pickled as legacy torch.save does: a persistent id per storage
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", torch.FloatStorage, "0", "cpu", 2**40, None)
            return None

    path = tmp_path / "legacy.pth"
    with open(path, "wb") as f:
        for header in (serialization.MAGIC_NUMBER, serialization.PROTOCOL_VERSION, {}):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump({"fc.weight": Storage()})
    _never_load(monkeypatch, torch)
    with pytest.raises(ValueError, match=r"declares 4,398,046,511,104 bytes of storages"):
        convert_weights.read_state_dict(path)


def test_legacy_and_zip_pth_of_their_size_still_read(tmp_path):
    torch = pytest.importorskip("torch", reason="needs PyTorch")
    state = {"fc.weight": torch.arange(6.0).reshape(2, 3), "fc.bias": torch.ones(2).half()}
    for legacy in (True, False):
        path = tmp_path / f"legacy{legacy}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        read = convert_weights.read_state_dict(path)
        np.testing.assert_array_equal(read["fc.weight"], state["fc.weight"].numpy())
        assert read["fc.bias"].dtype == np.float32


def test_safetensors_declaring_more_than_the_file_is_one_error(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
    path = tmp_path / "big.safetensors"
    safetensors_numpy.save_file({"fc.weight": np.zeros((4, 4), "float32")}, str(path))
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + header_size].replace(b"[4,4]", b"[4096,4096]")
    header = header.replace(b"[0,64]", b"[0,67108864]")
    path.write_bytes(len(header).to_bytes(8, "little") + header + data[8 + header_size :])
    err, peak = _peak_bytes(lambda: convert_weights.read_state_dict(path))
    assert str(err).startswith(f"Cannot read {path}: the file is truncated or corrupt")
    assert peak < 10_000_000


def _tiny(filters):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(filters, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="classifier")(x), name="tiny")


def test_tflite_weights_of_another_model_give_one_error(tmp_path, recwarn):
    # Issue 23: tflite.convert --model=run/model.keras --weights=FILE of another model
    # printed 325 lines and 162 UserWarnings: it loaded past the one loader of weights_file.
    from tflite import models

    saved, other = tmp_path / "model.keras", tmp_path / "other.weights.h5"
    _tiny(4).save(saved)
    _tiny(5).save_weights(other)
    with pytest.raises(ValueError) as info:
        models.load_model(saved, weights=other)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500
    assert message.startswith("The `weights` file does not fit model 'tiny'")
    assert "conv (model (3, 3, 3, 4), (4,), file (3, 3, 3, 5), (5,))" in message
    assert message.endswith(f"Received: weights={str(other)!r}")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert models.load_model(saved, weights=tmp_path / "model.keras").name == "tiny"


def test_a_folder_given_as_a_model_or_weights_file_is_named(tmp_path):
    # Issue 23: a folder named like a model file was said not to exist.
    from tflite import models

    folder = tmp_path / "run.keras"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"run.keras is a folder, not a .keras model file\."):
        models.load_model(folder)
    saved = tmp_path / "model.keras"
    _tiny(4).save(saved)
    with pytest.raises(ValueError, match=r"is a folder, not a weights file\. Received: weights="):
        models.load_model(saved, weights=tmp_path)


def test_a_full_disk_during_convert_weights_is_one_line(tmp_path, monkeypatch, capsys):
    # Issue 23: h5py writing to a full disk ended in a segfault (rc 139) with __dealloc__
    # tracebacks; the weights now go through files.write_bytes, as tflite.convert's do.
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
    import pathlib

    from ghostnet_keras import converters
    from ghostnet_keras.converters.core import expected_tensors

    model = convert_weights.build_model("ghostnet_050")
    shapes = expected_tensors(model, converters.get("ghostnet"))
    checkpoint = tmp_path / "ghostnet_050.safetensors"
    safetensors_numpy.save_file(
        {name: np.full(shape, 0.5, "float32") for name, shape in shapes.items()}, str(checkpoint)
    )

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    output = tmp_path / "out" / "g.weights.h5"
    args = [f"--checkpoint={checkpoint}", "--model=ghostnet_050", f"--output={output}"]
    assert convert_weights.main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: Cannot write {output}: No space left on device\n"
    assert os.listdir(output.parent) == []  # no temporary file left behind
