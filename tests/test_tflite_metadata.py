"""LiteRT model metadata (`tflite.metadata`): what it writes, read back by our reader and by
MediaPipe's own schema code, and real CIFAR-10 images classified by MediaPipe Tasks'
``ImageClassifier`` on the trained C-GhostNet's files, against the project's LiteRT scores."""

import io
import zipfile

import numpy as np
import pytest

from tflite import flatbuffer as fb
from tflite import metadata

LABELS = [f"class {i}" for i in range(10)]
INFO = dict(name="tiny", description="A tiny test classifier.", version="v1", author="us")


@pytest.fixture(scope="module")
def tiny_tflite():
    """A tiny untrained 10-class classifier at 32x32: {"float32": bytes, "uint8": bytes}
    (the second full-integer with uint8 input and output)."""
    import keras

    from tflite import convert

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    images = np.random.default_rng(0).uniform(0, 255, (20, 32, 32, 3)).astype("float32")
    settings = [dict(quantize="none"), dict(quantize="int8", io="uint8")]
    settings[1].update(representative_images=images, num_calibration=20)
    return dict(zip(["float32", "uint8"], convert.convert_variants(model, settings), strict=True))


def _metadata_buffer(flatbuffer):
    model = fb.read(flatbuffer)
    (entry,) = [m for m in model.metadata if bytes(m.name) == b"TFLITE_METADATA"]
    return bytes(bytearray(model.buffers[entry.buffer].data))


def test_round_trip(tiny_tflite):
    result = metadata.add_metadata(
        tiny_tflite["uint8"], labels=LABELS, license="Apache-2.0", **INFO
    )
    read = metadata.read_metadata(result)
    assert {k: read[k] for k in (*INFO, "license")} == {**INFO, "license": "Apache-2.0"}
    assert read["min_parser_version"] == "1.0.0"
    assert read["labels"] == LABELS
    assert read["files"] == {"labels.txt": ("\n".join(LABELS) + "\n").encode()}
    (subgraph,) = read["subgraph_metadata"]
    (image,), (scores,) = subgraph["input_tensor_metadata"], subgraph["output_tensor_metadata"]
    assert image["name"] == "images" and scores["name"] == "probabilities"
    assert image["content"] == {
        "content_properties_type": "ImageProperties",
        "content_properties": {"color_space": "RGB"},
    }
    assert image["process_units"] == [
        {"options_type": "NormalizationOptions", "options": {"mean": [0.0], "std": [1.0]}}
    ]
    (labels_file,) = scores["associated_files"]
    assert labels_file["type"] == "TENSOR_AXIS_LABELS" and labels_file["name"] == "labels.txt"
    # The files are stored uncompressed, in a zip archive after the flatbuffer.
    with zipfile.ZipFile(io.BytesIO(result)) as archive:
        assert [i.compress_type for i in archive.infolist()] == [zipfile.ZIP_STORED]
    # The tensors and the signature carry the names; the graph is otherwise the same.
    model, before = fb.read(result), fb.read(tiny_tflite["uint8"])
    graph = model.subgraphs[0]
    assert bytes(graph.tensors[graph.inputs[0]].name) == b"images"
    assert bytes(graph.tensors[graph.outputs[0]].name) == b"probabilities"
    (signature,) = model.signatureDefs
    assert [bytes(t.name) for t in (*signature.inputs, *signature.outputs)] == [
        b"images",
        b"probabilities",
    ]
    assert fb.op_names(result) == fb.op_names(tiny_tflite["uint8"])
    assert len(model.buffers) == len(before.buffers) + 1
    assert metadata.read_metadata(tiny_tflite["uint8"]) is None


def test_written_as_the_published_schema(tiny_tflite):
    """MediaPipe's code generated from metadata_schema.fbs decodes every field we write."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    result = metadata.add_metadata(
        tiny_tflite["float32"], labels=LABELS, license="MIT", mean=127.5, std=127.5, **INFO
    )
    buffer = _metadata_buffer(result)
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    decoded = schema.ModelMetadataT.InitFromPackedBuf(bytearray(buffer), 0)
    assert [decoded.name, decoded.description, decoded.version, decoded.author] == [
        v.encode() for v in INFO.values()
    ]
    assert (decoded.license, decoded.minParserVersion) == (b"MIT", b"1.0.0")
    (subgraph,) = decoded.subgraphMetadata
    (image,), (scores,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert image.name == b"images"
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    (unit,) = image.processUnits
    assert unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions
    assert (list(unit.options.mean), list(unit.options.std)) == ([127.5], [127.5])
    assert scores.name == b"probabilities"
    assert scores.content.contentPropertiesType == schema.ContentProperties.FeatureProperties
    (labels_file,) = scores.associatedFiles
    assert labels_file.name == b"labels.txt"
    assert labels_file.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS


def test_metadata_is_replaced_not_added(tiny_tflite):
    once = metadata.add_metadata(tiny_tflite["float32"], labels=LABELS, **INFO)
    other = [label.upper() for label in LABELS]
    twice = metadata.add_metadata(once, labels=other, name="again", output_name="scores")
    read = metadata.read_metadata(twice)
    assert (read["name"], read["labels"]) == ("again", other)
    assert len(fb.read(twice).buffers) == len(fb.read(once).buffers)
    assert [bytes(m.name) for m in fb.read(twice).metadata].count(b"TFLITE_METADATA") == 1
    with zipfile.ZipFile(io.BytesIO(twice)) as archive:
        assert archive.namelist() == ["labels.txt"]


def _int8_input(flatbuffer):
    model = fb.read(flatbuffer)
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].type = fb._schema().TensorType.INT8
    return fb.write(model)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(labels=LABELS[:7]), "labels has 7 names but the model's output has 10 classes"),
        (dict(labels="cat dog"), "`labels` must be a list of class names"),
        (dict(labels=[*LABELS[:9], "two\nlines"]), "Every label must be a non-empty name"),
        (dict(labels=[*LABELS[:9], ""]), "Every label must be a non-empty name"),
        (dict(mean=[123.7, 116.3, 103.5]), "`mean` must be one number for all three channels"),
        (dict(std=0), "`std` must not be 0"),
        (dict(std=float("nan")), "`std` must be a finite number"),
        (dict(name=""), "`name` must be a non-empty string"),
        (dict(version=3), "`version` must be a string or None"),
        (dict(output_name="images"), "`output_name` is the name of another tensor"),
        (dict(flatbuffer=b"not a model"), "`flatbuffer` must be the bytes of a .tflite model"),
    ],
)
def test_bad_input(tiny_tflite, change, message):
    arguments = dict(flatbuffer=tiny_tflite["float32"], labels=LABELS, **INFO) | change
    with pytest.raises(ValueError, match="Received: ") as error:
        metadata.add_metadata(arguments.pop("flatbuffer"), **arguments)
    assert message in str(error.value)


def test_int8_input_is_refused(tiny_tflite):
    """MediaPipe Tasks refuses an int8 input ("Requested one of these types: uint8/float32"),
    so metadata for it would not help: one clear line instead."""
    with pytest.raises(ValueError, match="takes a uint8 or float32 image input") as error:
        metadata.add_metadata(_int8_input(tiny_tflite["uint8"]), labels=LABELS, **INFO)
    assert str(error.value).endswith("Received: input type INT8")


def _classifier(flatbuffer):
    from tflite import classify

    return classify.classifier(flatbuffer, max_results=5)


def test_mediapipe_needs_the_metadata_for_a_float_input(tiny_tflite):
    with pytest.raises(Exception, match="requires specifying NormalizationOptions metadata"):
        _classifier(tiny_tflite["float32"])
    with _classifier(metadata.add_metadata(tiny_tflite["float32"], labels=LABELS, **INFO)):
        pass


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic", "int8", "int8_uint8_io"])
def test_mediapipe_classifies_real_images(cifar_tflite, cifar10_dir, variant):
    """The files of the export chain (`tflite.export`) load in MediaPipe Tasks as they are:
    it names the classes, and its top 5 on real 32x32 test JPEGs (one per
    class: MediaPipe resizes nothing at the model's size) are the top 5 of the project's
    LiteRT evaluation of the same pixels, with the same scores."""
    import mediapipe as mp
    from PIL import Image

    from tflite import evaluate

    classes = sorted(p.name for p in (cifar10_dir / "test").iterdir() if p.is_dir())
    flatbuffer = cifar_tflite[variant]  # exported with the class names: nothing added here
    assert metadata.read_metadata(flatbuffer)["labels"] == classes
    images = []
    for name in classes:
        path = sorted((cifar10_dir / "test" / name).iterdir())[0]
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
    expected = evaluate.TFLiteClassifier(cifar_tflite[variant]).predict(np.stack(images))
    # Scores agree to float rounding (another TFLite build); uint8 scores exactly.
    tolerance = 0 if variant == "int8_uint8_io" else 1e-4
    with _classifier(flatbuffer) as classifier:
        for pixels, scores in zip(images, expected, strict=True):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
            categories = result.classifications[0].categories
            assert [c.category_name for c in categories] == [classes[c.index] for c in categories]
            got = np.array([c.score for c in categories])
            # Rank by rank, the score of MediaPipe's class in LiteRT's scores is LiteRT's k-th
            # best: the same top 5, up to the order of equal scores.
            np.testing.assert_allclose(scores[[c.index for c in categories]], got, atol=tolerance)
            np.testing.assert_allclose(np.sort(scores)[::-1][:5], got, atol=tolerance)


def test_export_without_names_or_for_an_int8_input():
    """Without class names the file still gets metadata (MediaPipe then gives indices), with
    one note; an int8 input gets none by default, with one warning, and is an error when the
    metadata is asked for."""
    import keras

    from tflite import export

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, x, name="seven")
    images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    notes = []
    float_file, int8_file = export.export_variants(
        model,
        [export.ExportOptions(), export.ExportOptions(quantize="int8", io="int8")],
        representative_images=images,
        log=notes.append,
    )
    read = metadata.read_metadata(float_file)
    assert read["labels"] is None and read["files"] == {} and read["name"] == "seven"
    assert metadata.read_metadata(int8_file) is None
    assert len(notes) == 2
    assert notes[0].startswith("Note: no class names for the 7 classes")
    assert "MediaPipe Tasks cannot load a file with an int8 input" in notes[1]
    with _classifier(float_file) as classifier:
        import mediapipe as mp

        pixels = images[0].astype("uint8")
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
        assert [c.category_name for c in result.classifications[0].categories][:1] in (
            [None],
            [""],
        )
    with pytest.raises(ValueError, match="Received: io='int8', metadata=True"):
        export.ExportOptions(quantize="int8", io="int8", metadata=True)
    with pytest.raises(ValueError, match="labels has 3 names but the model's output has 7"):
        export.export(model, export.ExportOptions(labels=["a", "b", "c"]))


def test_classify_command_names_the_classes_as_the_app_would(
    cifar_tflite, cifar10_dir, tmp_path, capsys
):
    """`python -m tflite.classify` (MediaPipe Tasks, as in an app) prints each image's class
    names from the file's metadata, best first, with the project's LiteRT top 1; a missing
    image or one Pillow cannot read is one line and exit status 2."""
    from PIL import Image

    from tflite import classify, evaluate

    path = tmp_path / "ghostnet_int8.tflite"
    path.write_bytes(cifar_tflite["int8_uint8_io"])
    classes = sorted(p.name for p in (cifar10_dir / "test").iterdir() if p.is_dir())
    images = [sorted((cifar10_dir / "test" / c).iterdir())[1] for c in ("cat", "ship")]
    assert classify.main([f"--tflite={path}", "--top=3", *map(str, images)]) == 0
    lines = capsys.readouterr().out.splitlines()
    pixels = np.stack([np.asarray(Image.open(image).convert("RGB")) for image in images])
    best = evaluate.TFLiteClassifier(path).predict(pixels).argmax(axis=1)
    for line, image, index in zip(lines, images, best, strict=True):
        assert line.startswith(f"{image}: {classes[index]} ")
        assert len(line.split(", ")) == 3
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not an image")
    for bad, message in (
        (tmp_path / "missing.jpg", "The image file does not exist."),
        (not_an_image, "is not an image Pillow can read."),
    ):
        assert classify.main([f"--tflite={path}", str(bad)]) == 2
        assert message in capsys.readouterr().err


def test_the_region_of_interest_is_the_evaluation_crop():
    """MediaPipe's region of interest is the centre square that `eval_transform` keeps: the
    short side resized to floor(size / 0.875), the central size x size cut out."""
    from tflite import classify

    assert classify.centre_crop(32, 32, 32) == (0.0, 0.0, 1.0, 1.0)
    # 160x240 at 128: resized to 146x219, the central 128 square starts at (9, 45).
    left, top, right, bottom = classify.centre_crop(160, 240, 128)
    assert (left, top) == (45 / 219, 9 / 146)
    assert (right, bottom) == (left + 128 / 219, top + 128 / 146)
