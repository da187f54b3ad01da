"""LiteRT model metadata for `.tflite` image classifiers: labels, normalisation and model info
in the form MediaPipe Tasks and the LiteRT support library read, written without tflite-support.

- :func:`add_metadata` attaches it to a classifier (and names its input and output tensors);
- :func:`read_metadata` reads it back, as plain Python values.

The format is the published metadata schema (``metadata_schema.fbs`` of tflite-support and
MediaPipe, schema 1.5.0, file identifier ``M001``):

- a ``ModelMetadata`` flatbuffer, stored in one of the model's buffers and listed in the
  model's ``metadata`` under the name ``TFLITE_METADATA``;
- its associated files (here ``labels.txt``) in a zip archive appended to the model
  flatbuffer; readers find the archive from its end, and the flatbuffer ignores it.

The flatbuffer is written with the ``flatbuffers`` package, from :data:`_TABLES`: the part of
the schema this module writes, declared once and used by both the writer and the reader.
docs/metadata.md says why and what MediaPipe does with each field.
"""

import io
import numbers
import reprlib
import zipfile

import numpy as np

from ghostnet_keras.labels import LABELS_FILE  # the same name as in a model directory
from tflite import flatbuffer as fb

# The name of the model's metadata entry whose buffer holds the ModelMetadata flatbuffer.
METADATA_NAME = "TFLITE_METADATA"
# The metadata flatbuffer's file identifier (schema 1.x).
METADATA_IDENTIFIER = b"M001"
# Every field written here exists since schema 1.0.0 (later versions added tokenizers, tensor
# groups, audio, file versions and custom metadata), so parsers from 1.0.0 on read it all.
MIN_PARSER_VERSION = "1.0.0"

# The tables of metadata_schema.fbs that this module writes, each with its fields in schema
# order: a field's slot in the table is its position, a union taking two slots (its type,
# then its value). Kinds: "string", "[string]", "[float]", "enum NAME", "union NAME", a table
# name or "[" table name "]"; None keeps the slot of a field this module neither writes nor
# reads.
_TABLES = {
    "ModelMetadata": (
        ("name", "string"),
        ("description", "string"),
        ("version", "string"),
        ("subgraph_metadata", "[SubGraphMetadata]"),
        ("author", "string"),
        ("license", "string"),
        ("associated_files", "[AssociatedFile]"),
        ("min_parser_version", "string"),
    ),
    "SubGraphMetadata": (
        ("name", "string"),
        ("description", "string"),
        ("input_tensor_metadata", "[TensorMetadata]"),
        ("output_tensor_metadata", "[TensorMetadata]"),
        ("associated_files", "[AssociatedFile]"),
    ),
    "TensorMetadata": (
        ("name", "string"),
        ("description", "string"),
        ("dimension_names", "[string]"),
        ("content", "Content"),
        ("process_units", "[ProcessUnit]"),
        ("stats", None),
        ("associated_files", "[AssociatedFile]"),
    ),
    "Content": (("content_properties", "union ContentProperties"), ("range", None)),
    "FeatureProperties": (),
    "ImageProperties": (("color_space", "enum ColorSpaceType"), ("default_size", None)),
    "ProcessUnit": (("options", "union ProcessUnitOptions"),),
    "NormalizationOptions": (("mean", "[float]"), ("std", "[float]")),
    "AssociatedFile": (
        ("name", "string"),
        ("description", "string"),
        ("type", "enum AssociatedFileType"),
        ("locale", "string"),
    ),
}

# The schema's enums (``byte``) and unions (``ubyte`` type codes, 0 being NONE), by code.
_ENUMS = {
    "AssociatedFileType": (
        "UNKNOWN",
        "DESCRIPTIONS",
        "TENSOR_AXIS_LABELS",
        "TENSOR_VALUE_LABELS",
        "TENSOR_AXIS_SCORE_CALIBRATION",
        "VOCABULARY",
        "SCANN_INDEX_FILE",
    ),
    "ColorSpaceType": ("UNKNOWN", "RGB", "GRAYSCALE"),
    "ContentProperties": (
        "NONE",
        "FeatureProperties",
        "ImageProperties",
        "BoundingBoxProperties",
        "AudioProperties",
    ),
    "ProcessUnitOptions": (
        "NONE",
        "NormalizationOptions",
        "ScoreCalibrationOptions",
        "ScoreThresholdingOptions",
        "BertTokenizerOptions",
        "SentencePieceTokenizerOptions",
        "RegexTokenizerOptions",
    ),
}

# The tensor types MediaPipe Tasks' ImageClassifier takes: input uint8 or float32 (RGB
# 0-255, or float normalised by NormalizationOptions); output float32 or uint8.
_IMAGE_INPUT_TYPES = ("UINT8", "FLOAT32")
_SCORE_OUTPUT_TYPES = ("FLOAT32", "UINT8")


def _flatbuffers():
    import flatbuffers

    return flatbuffers


def _slots(table):
    """``(name, kind, slot)`` of each field of ``table``; a union's slot is its type's."""
    slot = 0
    for name, kind in _TABLES[table]:
        yield name, kind, slot
        slot += 2 if kind and kind.startswith("union ") else 1


def _slot_count(table):
    return sum(2 if k and k.startswith("union ") else 1 for _, k in _TABLES[table])


def _encode(builder, table, values):
    """Writes ``values`` (a dict of ``table``'s fields; a union as ``NAME_type`` naming the
    member table and ``NAME`` its dict) into ``builder``; returns the table's offset."""
    known = {name for name, kind, _ in _slots(table) if kind}
    known |= {f"{name}_type" for name, kind, _ in _slots(table) if kind and "union " in kind}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"{table} has no field {sorted(unknown)} that this writer knows")
    fields = []  # (slot, prepend method name, value): children are built before the table
    for name, kind, slot in _slots(table):
        value = values.get(name)
        if value is None or kind is None:
            continue
        if kind.startswith("union "):
            member = values[f"{name}_type"]
            code = _ENUMS[kind.split()[1]].index(member)
            fields.append((slot, "PrependUint8Slot", code))
            offset = _encode(builder, member, value)
            fields.append((slot + 1, "PrependUOffsetTRelativeSlot", offset))
        elif kind.startswith("enum "):
            fields.append((slot, "PrependInt8Slot", _ENUMS[kind.split()[1]].index(value)))
        else:
            fields.append(
                (slot, "PrependUOffsetTRelativeSlot", _encode_offset(builder, kind, value))
            )
    builder.StartObject(_slot_count(table))
    for slot, method, value in fields:
        getattr(builder, method)(slot, value, 0)
    return builder.EndObject()


def _encode_offset(builder, kind, value):
    if kind == "string":
        return builder.CreateString(value)
    if kind == "[float]":
        builder.StartVector(4, len(value), 4)
        for x in reversed(value):
            builder.PrependFloat32(float(x))
        return builder.EndVector()
    if kind.startswith("["):
        element = kind[1:-1]
        if element == "string":
            offsets = [builder.CreateString(s) for s in value]
        else:
            offsets = [_encode(builder, element, v) for v in value]
        builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()
    return _encode(builder, kind, value)


def _decode(buf, position, table):
    """The fields of the ``table`` at ``position`` of ``buf`` that are present, as a dict in
    the form :func:`_encode` takes (a union of a member not in :data:`_TABLES`: its name and
    an empty dict)."""
    flatbuffers = _flatbuffers()
    tab = flatbuffers.table.Table(buf, position)
    result = {}
    for name, kind, slot in _slots(table):
        offset = tab.Offset(4 + 2 * slot)
        if not offset or kind is None:
            continue
        if kind.startswith("union "):
            code = tab.Get(flatbuffers.number_types.Uint8Flags, offset + tab.Pos)
            value_offset = tab.Offset(4 + 2 * (slot + 1))
            members = _ENUMS[kind.split()[1]]
            if not code or not value_offset:
                continue
            member = members[code] if code < len(members) else str(code)
            result[f"{name}_type"] = member
            inner = tab.Indirect(value_offset + tab.Pos)
            result[name] = _decode(buf, inner, member) if member in _TABLES else {}
        elif kind.startswith("enum "):
            code = tab.Get(flatbuffers.number_types.Int8Flags, offset + tab.Pos)
            members = _ENUMS[kind.split()[1]]
            result[name] = members[code] if 0 <= code < len(members) else code
        elif kind == "string":
            result[name] = tab.String(offset + tab.Pos).decode("utf-8")
        elif kind.startswith("["):
            start, count = tab.Vector(offset), tab.VectorLen(offset)
            element = kind[1:-1]
            if element == "float":
                packer = flatbuffers.number_types.Float32Flags.packer_type
                get = flatbuffers.encode.Get
                result[name] = [float(get(packer, buf, start + 4 * i)) for i in range(count)]
            elif element == "string":
                result[name] = [tab.String(start + 4 * i).decode("utf-8") for i in range(count)]
            else:
                result[name] = [
                    _decode(buf, tab.Indirect(start + 4 * i), element) for i in range(count)
                ]
        else:
            result[name] = _decode(buf, tab.Indirect(offset + tab.Pos), kind)
    return result


def _type_name(code):
    names = {v: k for k, v in vars(fb._schema().TensorType).items() if not k.startswith("_")}
    return names.get(code, str(code))


def _check_text(argument, value, required=False):
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        need = "a non-empty string" if required else "a string or None"
        raise ValueError(f"`{argument}` must be {need}. Received: {argument}={value!r}")


def _check_number(argument, value):
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0):
        raise ValueError(
            f"`{argument}` must be one number for all three channels: MediaPipe Tasks rejects "
            f"per-channel normalisation (keep it in the model's graph). "
            f"Received: {argument}={value!r}"
        )
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or value != value
        or abs(value) == float("inf")
    ):
        raise ValueError(f"`{argument}` must be a finite number. Received: {argument}={value!r}")


def check_labels(labels, classes):
    """Raises a ``ValueError`` unless ``labels`` is a list of ``classes`` one-line names."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
        raise ValueError(
            f"`labels` must be a list of class names, one per output class. "
            f"Received: labels={reprlib.repr(labels)}"
        )
    for label in labels:
        if not isinstance(label, str) or not label.strip() or "\n" in label or "\r" in label:
            raise ValueError(
                "Every label must be a non-empty name on one line (the labels file has one "
                f"per line). Received: label {label!r} in labels={reprlib.repr(list(labels))}"
            )
    if len(labels) != classes:
        raise ValueError(
            f"labels has {len(labels)} names but the model's output has {classes} classes. "
            f"Received: labels={reprlib.repr(list(labels))}"
        )


def _rename(graph, signatures, index, new_name, argument):
    """Names tensor ``index`` of ``graph`` (and its signature key) ``new_name``."""
    for i, tensor in enumerate(graph.tensors):
        if i != index and tensor.name is not None and bytes(tensor.name) == new_name.encode():
            raise ValueError(
                f"`{argument}` is the name of another tensor of the model. "
                f"Received: {argument}={new_name!r}"
            )
    graph.tensors[index].name = new_name.encode()
    for signature in signatures:
        for entry in (*(signature.inputs or ()), *(signature.outputs or ())):
            if entry.tensorIndex == index:
                entry.name = new_name.encode()


def add_metadata(
    flatbuffer,
    *,
    labels,
    name,
    description=None,
    version=None,
    author=None,
    license=None,
    mean=0.0,
    std=1.0,
    input_name="images",
    output_name="probabilities",
):
    """Returns an image classifier `.tflite` with LiteRT model metadata attached.

    What MediaPipe Tasks' ``ImageClassifier`` and the LiteRT support library read: the
    input's image properties (RGB) and normalisation, the output's class names as a
    ``TENSOR_AXIS_LABELS`` file (``labels.txt``, one per line, packed in the file), the
    model's name, description, version, author and license. The input and output tensors
    (and their signature keys) are renamed ``input_name`` and ``output_name``, also the names
    the metadata gives them. Metadata already in the file is replaced.

    Write it last: a flatbuffer rewrite (``tflite.flatbuffer``) keeps the metadata buffer
    but drops the appended labels file.

    Args:
        flatbuffer: the `.tflite` model (``bytes``): one subgraph, one ``(1, H, W, 3)`` input
            of type uint8 (raw pixels) or float32, one ``(1, classes)`` output of type float32
            or uint8. An int8 input is refused: MediaPipe Tasks cannot load it.
        labels: the class names in output order, one per class, each on one line; or None:
            no labels file (MediaPipe Tasks then names no category, only its index).
        name: the model's name.
        description, version, author, license: strings, or None to leave them out.
        mean, std: the one normalisation ``(pixel - mean) / std`` that a client applies to a
            float input before the model, the same for every channel. Our models normalise
            inside the graph, so they take the pixels as they are: 0 and 1. A uint8 input
            always takes the raw pixels (MediaPipe ignores these values there).
        input_name, output_name: the names given to the input and output tensors.

    Returns:
        The model with its metadata, as ``bytes``.

    Raises:
        ValueError: naming the argument and the value received.
    """
    if not isinstance(flatbuffer, (bytes, bytearray)) or not fb.is_tflite(flatbuffer):
        preview = bytes(flatbuffer[:8]) if isinstance(flatbuffer, (bytes, bytearray)) else None
        raise ValueError(
            "`flatbuffer` must be the bytes of a .tflite model (flatbuffer identifier 'TFL3'). "
            f"Received: flatbuffer={type(flatbuffer).__name__} starting {preview!r}"
        )
    _check_text("name", name, required=True)
    for argument, value in (
        ("description", description),
        ("version", version),
        ("author", author),
        ("license", license),
    ):
        _check_text(argument, value)
    _check_text("input_name", input_name, required=True)
    _check_text("output_name", output_name, required=True)
    _check_number("mean", mean)
    _check_number("std", std)
    if std == 0:
        raise ValueError(f"`std` must not be 0. Received: std={std!r}")

    model = fb.read(bytes(flatbuffer))
    if len(model.subgraphs) != 1:
        raise ValueError(
            "An image classifier with metadata has one subgraph. "
            f"Received: flatbuffer with {len(model.subgraphs)} subgraphs"
        )
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(
            "An image classifier with metadata has one input and one output. Received: "
            f"flatbuffer with {len(graph.inputs)} inputs and {len(graph.outputs)} outputs"
        )
    image, scores = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    image_shape, scores_shape = [int(d) for d in image.shape], [int(d) for d in scores.shape]
    if len(image_shape) != 4 or image_shape[-1] != 3:
        raise ValueError(
            "The model's input must be a batch of RGB images (batch, height, width, 3). "
            f"Received: input shape {tuple(image_shape)}"
        )
    if _type_name(image.type) not in _IMAGE_INPUT_TYPES:
        raise ValueError(
            "MediaPipe Tasks takes a uint8 or float32 image input; convert with io='uint8' or "
            f"io='float', or leave the metadata out. Received: input type "
            f"{_type_name(image.type)}"
        )
    if len(scores_shape) != 2 or _type_name(scores.type) not in _SCORE_OUTPUT_TYPES:
        raise ValueError(
            "The model's output must be float32 or uint8 scores of shape (batch, classes). "
            f"Received: output shape {tuple(scores_shape)}, type {_type_name(scores.type)}"
        )
    if labels is not None:
        check_labels(labels, scores_shape[1])
    _rename(graph, model.signatureDefs or (), graph.inputs[0], input_name, "input_name")
    _rename(graph, model.signatureDefs or (), graph.outputs[0], output_name, "output_name")

    height, width = image_shape[1:3]
    info = {
        "name": name,
        "description": description,
        "version": version,
        "author": author,
        "license": license,
        "min_parser_version": MIN_PARSER_VERSION,
        "subgraph_metadata": [
            {
                "input_tensor_metadata": [
                    {
                        "name": input_name,
                        "description": f"An RGB image of {width}x{height} pixels, values 0-255.",
                        "content": {
                            "content_properties_type": "ImageProperties",
                            "content_properties": {"color_space": "RGB"},
                        },
                        "process_units": [
                            {
                                "options_type": "NormalizationOptions",
                                "options": {"mean": [float(mean)], "std": [float(std)]},
                            }
                        ],
                    }
                ],
                "output_tensor_metadata": [
                    {
                        "name": output_name,
                        "description": f"The scores of the {scores_shape[1]} classes.",
                        "content": {
                            "content_properties_type": "FeatureProperties",
                            "content_properties": {},
                        },
                        "associated_files": [
                            {
                                "name": LABELS_FILE,
                                "description": "The class names, one per line, in output order.",
                                "type": "TENSOR_AXIS_LABELS",
                            }
                        ]
                        if labels is not None
                        else None,
                    }
                ],
            }
        ],
    }
    builder = _flatbuffers().Builder(1024)
    builder.Finish(_encode(builder, "ModelMetadata", info), METADATA_IDENTIFIER)
    _set_metadata_buffer(model, bytes(builder.Output()))
    if labels is None:
        return fb.write(model)
    files = {LABELS_FILE: ("\n".join(labels) + "\n").encode("utf-8")}
    return _append_zip(fb.write(model), files)


def _set_metadata_buffer(model, data):
    """Stores ``data`` as the buffer of the model's ``TFLITE_METADATA`` entry (replacing it)."""
    schema = fb._schema()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    entries = [m for m in (model.metadata or []) if bytes(m.name) == METADATA_NAME.encode()]
    if entries:
        model.buffers[entries[0].buffer] = buffer
        return
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]


def _append_zip(flatbuffer, files):
    """``flatbuffer`` followed by a zip archive of ``files`` (name -> bytes), stored
    uncompressed, with offsets from the start of the file as zip readers expect."""
    out = io.BytesIO(flatbuffer)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            archive.writestr(file_name, content)
    return out.getvalue()


def read_metadata(flatbuffer):
    """The LiteRT model metadata of a `.tflite` model, or None when it has none.

    Returns:
        A dict of the ``ModelMetadata`` fields present (``name``, ``description``,
        ``version``, ``author``, ``license``, ``min_parser_version``, ``subgraph_metadata``:
        nested dicts and lists as the schema nests them, enums by name, a union as
        ``NAME_type`` and ``NAME``), plus ``files`` (the associated files packed in the
        model: name -> bytes) and ``labels`` (the first output's ``TENSOR_AXIS_LABELS``
        file as a list of names, or None).
    """
    fb.check_tflite(bytes(flatbuffer[:8]))
    model = fb._schema().Model.GetRootAs(bytes(flatbuffer), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            break
    else:
        return None
    buf = bytearray(data.tobytes() if isinstance(data, np.ndarray) else b"")
    flatbuffers = _flatbuffers()
    if not flatbuffers.util.BufferHasIdentifier(buf, 0, METADATA_IDENTIFIER):
        raise ValueError(
            f"The model's {METADATA_NAME} buffer is not metadata of schema "
            f"{METADATA_IDENTIFIER.decode()}. Received: identifier {bytes(buf[4:8])!r}"
        )
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0)
    result = _decode(buf, root, "ModelMetadata")
    result["files"] = _zip_files(flatbuffer)
    result["labels"] = None
    for subgraph in result.get("subgraph_metadata", [])[:1]:
        for tensor in subgraph.get("output_tensor_metadata", [])[:1]:
            for file in tensor.get("associated_files", []):
                if file.get("type") == "TENSOR_AXIS_LABELS" and file["name"] in result["files"]:
                    lines = result["files"][file["name"]].decode("utf-8").split("\n")
                    result["labels"] = lines[:-1] if lines and not lines[-1] else lines
                    break
    return result


def _zip_files(flatbuffer):
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(flatbuffer))) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except zipfile.BadZipFile:
        return {}
