"""Reading and editing `.tflite` files: the one place that knows the TFLite flatbuffer schema.

Reading (no interpreter needed): :func:`read_file` (a `.tflite` path, checked),
:func:`check_tflite`, :func:`op_names` (execution order),
:func:`op_census` (counts), :func:`float_ops` (what still computes in float).

Editing (each takes and returns ``bytes``; a file it does not apply to comes back unchanged):

- :func:`float_softmax` and :func:`float_depthwise`, the rewrites applied after conversion
  so that XNNPACK runs every op (:func:`finish_flatbuffer` applies both);
- :func:`truncated_models` and :func:`single_op_models`, the cuts that the latency profiles
  of :mod:`tflite.latency` time.

The schema and the object API come from ``ai_edge_litert`` (the ``tflite`` extra).
"""

import collections
import functools

import numpy as np

# A TFLite flatbuffer carries the file identifier "TFL3" at bytes 4-8.
TFLITE_MAGIC = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _utils():
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils


@functools.cache
def _builtin_names():
    operators = _schema().BuiltinOperator
    return {v: k for k, v in vars(operators).items() if not k.startswith("_")}


def is_tflite(content):
    """Whether ``content`` (bytes) starts like a TFLite flatbuffer."""
    return len(content) >= 8 and bytes(content[4:8]) == TFLITE_MAGIC


def check_tflite(content, source=None, argument="model"):
    """Raises a ``ValueError`` naming ``source`` (as ``argument=source``; bytes without a
    name: their first bytes) unless ``content`` starts like a TFLite flatbuffer."""
    if not is_tflite(content):
        raise ValueError(
            f"{subject(source)} not a TFLite model (no 'TFL3' flatbuffer identifier). "
            f"Received: {received(source, argument, content)}"
        )


def subject(source):
    """``"PATH is"``, or ``"The model is"`` for bytes without a name: for messages."""
    return f"{source} is" if source else "The model is"


def received(source, argument, content):
    """The ``Received:`` part of a message on a model: ``argument=source`` or, for bytes
    without a name, their first 8."""
    return f"{argument}={source!r}" if source else f"first bytes={bytes(content[:8])!r}"


def check_file(path, argument="tflite"):
    """Raises a ``ValueError`` naming ``path`` (as ``argument=path``) unless it is a file."""
    import os

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a .tflite file. Received: {argument}={path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"The .tflite file does not exist. Received: {argument}={path!r}")


def read_file(path, argument="tflite"):
    """The bytes of the `.tflite` file at ``path``.

    Raises a ``ValueError`` naming the path (as ``argument=path``) when it does not exist, is
    a folder or does not start like a TFLite flatbuffer. Whether LiteRT can load the rest is
    :func:`tflite.latency.load_interpreter`'s check.
    """
    check_file(path, argument)
    with open(path, "rb") as f:
        content = f.read()
    check_tflite(content, str(path), argument)
    return content


def read(flatbuffer):
    """The mutable object tree (``schema.ModelT``) of a `.tflite` model, to edit."""
    check_tflite(flatbuffer)
    return _utils().read_model_from_bytearray(bytearray(flatbuffer))


def write(model):
    """The `.tflite` bytes of an object tree from :func:`read`."""
    return bytes(_utils().convert_object_to_bytearray(model))


def builtin_code(model, op):
    """The ``BuiltinOperator`` code of ``op`` (an ``OperatorT`` of ``model``)."""
    return _utils().get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])


def op_name(model, op):
    """The name of ``op`` (an ``OperatorT`` of ``model``), e.g. ``"CONV_2D"``."""
    return _builtin_names().get(builtin_code(model, op), "CUSTOM")


def _op_codes(flatbuffer):
    """``(read-only Model, the name of every operator code)``: custom ops by their own name."""
    check_tflite(bytes(flatbuffer[:8]))
    model = _schema().Model.GetRootAs(bytes(flatbuffer), 0)
    names = _builtin_names()
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names.get(builtin, str(builtin)))
    return model, codes


def op_names(flatbuffer, subgraph=0):
    """The op names of a `.tflite` model's subgraph in execution order, e.g.
    ``["CONV_2D", "DEPTHWISE_CONV_2D", ...]`` (custom ops under their custom name)."""
    model, codes = _op_codes(flatbuffer)
    return _subgraph_ops(model, codes, subgraph)


def _subgraph_ops(model, codes, subgraph):
    graph = model.Subgraphs(subgraph)
    return [codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength())]


def op_census(flatbuffer):
    """Counts the ops of a `.tflite` model by name, read from the flatbuffer itself.

    Returns:
        A ``collections.Counter`` such as ``{"CONV_2D": 53, "DEPTHWISE_CONV_2D": 41, ...}``
        over every subgraph (custom ops count under their custom name).
    """
    model, codes = _op_codes(flatbuffer)
    census = collections.Counter()
    for s in range(model.SubgraphsLength()):
        census.update(_subgraph_ops(model, codes, s))
    return census


def float_ops(flatbuffer):
    """The names of the ops with a float32 input or output, other than the QUANTIZE of a float
    model input and the DEQUANTIZE of a float model output (first subgraph)."""
    model = read(flatbuffer)
    graph = model.subgraphs[0]
    float32 = _schema().TensorType.FLOAT32
    ends = set(graph.inputs) | set(graph.outputs)
    found = []
    for op in graph.operators:
        name = op_name(model, op)
        indices = [int(i) for i in (*op.inputs, *op.outputs) if i >= 0]
        if name in ("QUANTIZE", "DEQUANTIZE") and ends & set(indices):
            continue
        if any(graph.tensors[i].type == float32 for i in indices):
            found.append(name)
    return found


def opcode_index(model, builtin, version=1):
    """The index of ``builtin`` in ``model.operatorCodes``, adding the code if missing."""
    schema = _schema()
    for index, code in enumerate(model.operatorCodes):
        if _utils().get_builtin_code_from_operator_code(code) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def float_softmax(flatbuffer):
    """Moves a quantized final SOFTMAX of a `.tflite` model to float, so that XNNPACK runs it.

    XNNPACK has no int8/uint8 softmax: a full-integer model ends with a SOFTMAX that the
    delegate leaves to the reference kernel. The softmax then computes in float on the
    dequantized int8 logits (a DEQUANTIZE in front of it), and what read its quantized
    output reads the float probabilities instead:

    - ``SOFTMAX(int8) -> DEQUANTIZE`` (``io="float"``: a float model output): the softmax
      writes the float output itself;
    - ``SOFTMAX(int8) -> QUANTIZE`` (``io="uint8"``: the int8 probabilities requantized to
      the uint8 model output): the QUANTIZE takes the float probabilities, a float-to-uint8
      quantization that XNNPACK runs, where it does not run an int8-to-uint8 one;
    - ``SOFTMAX(int8)`` as the model output (``io="int8"``): a QUANTIZE after the float
      softmax writes it.

    The output tensor keeps its type and quantization, and the probabilities come from the
    same int8 logits: no less accurate. Other models are returned unchanged.
    """
    schema = _schema()
    ops = schema.BuiltinOperator
    quantized = (schema.TensorType.INT8, schema.TensorType.UINT8)
    model = read(flatbuffer)
    if len(model.subgraphs) != 1:
        return flatbuffer
    graph = model.subgraphs[0]

    def new_float_tensor(like, suffix):
        tensor = schema.TensorT()
        tensor.shape = list(like.shape)
        tensor.shapeSignature = (
            list(like.shapeSignature) if like.shapeSignature is not None else None
        )
        tensor.type = schema.TensorType.FLOAT32
        tensor.buffer = 0  # buffer 0 is the empty buffer: a computed tensor
        tensor.name = (like.name or b"") + suffix
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    changed = False
    for position, op in enumerate(list(graph.operators)):
        if builtin_code(model, op) != ops.SOFTMAX:
            continue
        if graph.tensors[op.inputs[0]].type not in quantized:
            continue
        logits, probs = op.inputs[0], op.outputs[0]
        users = [o for o in graph.operators if probs in list(o.inputs)]
        user = builtin_code(model, users[0]) if len(users) == 1 else None
        if probs in list(graph.outputs):
            if users:
                continue
        elif user not in (ops.DEQUANTIZE, ops.QUANTIZE):
            continue
        dequantize = schema.OperatorT()
        dequantize.opcodeIndex = opcode_index(model, ops.DEQUANTIZE)
        float_logits = new_float_tensor(graph.tensors[logits], b"_float")
        dequantize.inputs, dequantize.outputs = [logits], [float_logits]
        graph.operators.insert(position, dequantize)
        if user == ops.DEQUANTIZE:  # the softmax writes the float output directly
            op.inputs, op.outputs = [float_logits], [users[0].outputs[0]]
            graph.operators.remove(users[0])
        elif user == ops.QUANTIZE:  # the requantization to the output quantizes floats
            float_probs = new_float_tensor(graph.tensors[probs], b"_float")
            op.inputs, op.outputs = [float_logits], [float_probs]
            users[0].inputs = [float_probs]
        else:  # the softmax was the model output: a QUANTIZE writes it
            quantize = schema.OperatorT()
            quantize.opcodeIndex = opcode_index(model, ops.QUANTIZE)
            float_probs = new_float_tensor(graph.tensors[probs], b"_float")
            quantize.inputs, quantize.outputs = [float_probs], [probs]
            op.inputs, op.outputs = [float_logits], [float_probs]
            graph.operators.insert(position + 2, quantize)
        changed = True
    return write(model) if changed else flatbuffer


def float_depthwise(flatbuffer):
    """Stores the int8 weights of hybrid depthwise convolutions dequantized, so XNNPACK runs them.

    Dynamic-range quantization gives large depthwise kernels int8 weights and keeps float
    activations (a "hybrid" DEPTHWISE_CONV_2D). XNNPACK does not take that op, so each runs
    on the reference kernel, in a partition of its own. This replaces every such weight
    tensor by its dequantized float32 values ``scale * (q - zero_point)`` (per channel):
    the op becomes a float depthwise conv on exactly the weights of the quantized file,
    without the hybrid kernel's on-the-fly int8 rounding of the activations. Depthwise
    kernels are a small part of a model, so the file grows little. Other models are
    returned unchanged.
    """
    schema = _schema()
    model = read(flatbuffer)
    changed = False
    for graph in model.subgraphs:
        for op in graph.operators:
            if builtin_code(model, op) != schema.BuiltinOperator.DEPTHWISE_CONV_2D:
                continue
            if len(op.inputs) < 2:
                continue
            x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            if x.type != schema.TensorType.FLOAT32 or w.type != schema.TensorType.INT8:
                continue
            buffer = model.buffers[w.buffer]
            if buffer.data is None or w.quantization is None or w.quantization.scale is None:
                continue
            q = np.frombuffer(bytes(bytearray(buffer.data)), np.int8).reshape(w.shape)
            scale = np.asarray(w.quantization.scale, np.float32)
            zero = np.asarray(
                w.quantization.zeroPoint if w.quantization.zeroPoint is not None else 0,
                np.float32,
            )
            if scale.size > 1:  # per channel, along quantizedDimension
                shape = [1] * q.ndim
                shape[w.quantization.quantizedDimension] = scale.size
                scale, zero = (
                    scale.reshape(shape),
                    np.broadcast_to(zero, scale.shape).reshape(shape),
                )
            weights = ((q.astype(np.float32) - zero) * scale).astype("<f4")
            buffer.data = np.frombuffer(weights.tobytes(), np.uint8)
            w.type = schema.TensorType.FLOAT32
            w.quantization = None
            changed = True
    return write(model) if changed else flatbuffer


def finish_flatbuffer(flatbuffer):
    """The flatbuffer rewrites, each a no-op where it does not apply: :func:`float_softmax`
    (full-integer models) and :func:`float_depthwise` (dynamic-range models)."""
    return float_depthwise(float_softmax(flatbuffer))


def _single_subgraph(flatbuffer, pieces):
    model = read(flatbuffer)
    if len(model.subgraphs) != 1:
        raise ValueError(
            f"Only single-subgraph models can be cut into {pieces}. "
            f"Received: {len(model.subgraphs)} subgraphs"
        )
    return model


def truncated_models(flatbuffer, cut_ops=("ADD",)):
    """Prefixes of a single-subgraph `.tflite` model, cut after every op named in ``cut_ops``.

    Returns a list of ``(op_index, ops_in_segment, flatbuffer)``: the model keeps its
    operators ``0..op_index`` (they are stored in execution order) and outputs the first
    output of the last one; the last entry is the whole model. Timing the prefixes side by
    side gives the cost of each segment (for a residual network, cut at ADD: one block per
    segment) while XNNPACK still fuses and plans each prefix as it would the whole graph.
    """
    model = _single_subgraph(flatbuffer, "segments")
    ops = [op_name(model, op) for op in model.subgraphs[0].operators]
    cuts = [i for i, name in enumerate(ops[:-1]) if name in cut_ops] + [len(ops) - 1]
    result, start = [], 0
    for cut in cuts:
        prefix = read(flatbuffer)
        graph = prefix.subgraphs[0]
        graph.operators = graph.operators[: cut + 1]
        graph.outputs = [graph.operators[-1].outputs[0]]
        segment = collections.Counter(ops[start : cut + 1])
        result.append((cut, segment, write(prefix)))
        start = cut + 1
    return result


def single_op_models(flatbuffer):
    """Every op of a single-subgraph `.tflite` model as a model of its own.

    Returns a list of ``(op_name, output_shape, flatbuffer)`` in execution order. Each model
    takes the op's computed inputs as its inputs (with their types and quantization) and
    keeps only the constant buffers that op reads.
    """
    model = _single_subgraph(flatbuffer, "ops")
    graph = model.subgraphs[0]
    data = [buffer.data for buffer in model.buffers]
    constant = {i for i, t in enumerate(graph.tensors) if t.buffer and data[t.buffer] is not None}
    result = []
    for op in list(graph.operators):
        name = op_name(model, op)
        used = {graph.tensors[t].buffer for t in op.inputs if t >= 0}
        for i, buffer in enumerate(model.buffers):
            buffer.data = data[i] if i in used else None
        graph.operators = [op]
        graph.inputs = [t for t in op.inputs if t >= 0 and t not in constant]
        graph.outputs = list(op.outputs)
        shape = tuple(int(d) for d in graph.tensors[op.outputs[0]].shape)
        result.append((name, shape, write(model)))
    return result
