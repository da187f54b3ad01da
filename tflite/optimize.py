"""An export-time rewrite of a Keras graph into an equivalent one that LiteRT runs faster.

``export_graph(model)`` rebuilds a Functional model as a new fixed-batch-1
Functional model that computes the same function (float outputs equal to
about 1e-6) with fewer, better-fused TFLite ops. The user's model, its layer
names and its weights are untouched: layers that need no change are reused
(their weights are shared), changed layers are new layers with computed
weights. Rewrites, each applied wherever its pattern occurs:

1. **Input normalisation folded into the first convolution.** A
   ``Normalization`` layer (per-channel ``(x - mean) / std`` on 0-255 RGB),
   optionally followed by ``ZeroPadding2D``, feeding a ``Conv2D`` becomes a
   convolution on the raw pixels (kernel divided by ``std``, bias shifted),
   padded with the per-channel mean (zero in normalised space) by a
   concatenation with constant rows and columns; padding that no output reads
   (the bottom row and right column at stride 2 on an even size) is dropped.
   In TFLite this removes a SUB and a MUL on the 224x224x3 input (broadcasting
   over 3 channels, slow in XNNPACK: ~10% of the float and ~30% of the int8
   latency of C-GhostNet-1.0); with uint8 input the first convolution then sees
   the exact pixel values.
2. **BatchNormalization folded** into the preceding ``Conv2D`` or
   ``DepthwiseConv2D`` (which gets a bias) when the BN is its only consumer.
   The TFLite converter does this too; doing it here lets the other rewrites
   act on plain convolutions.
3. **Hard-sigmoid gate as a fused ReLU6.** ``ReLU(max_value=1)(Rescaling(a,
   offset=b)(conv(x)))`` (the SE gate ``relu6(z + 3) / 6``) becomes a
   convolution with kernel ``6a W`` and bias ``6a bias + 6b`` with a fused
   RELU6, the factor 1/6 being carried forward and folded into the next
   convolution's kernel when only linear ops lie between (the SE ``Multiply``,
   then the projection conv). In int8 TFLite the original gate is a MINIMUM and
   a RELU that XNNPACK does not take, which split the graph into 9 delegate
   partitions; after the rewrite every op is delegated.

4. **Depthwise convolution before the concatenation.** ``dw(concat[a, b])`` (a
   depthwise conv, optionally after ``ZeroPadding2D`` and before BN and ReLU, all per
   channel) becomes ``concat[dw_a(a), dw_b(b)]``. In a stride-2 Ghost bottleneck the
   concatenation then copies a quarter of the data (C-GhostNet's 112x112x48 expansion:
   56x56x48). Measured on x86 (AVX2): -0.18 ms float32 and -0.07 ms int8 on that block.

These are the rewrites that paid in the whole model, in float32 and int8, on x86 (see
``benchmarks/results/tflite_latency.md``). Use ``export_graph`` before converting:
``convert_model(export_graph(model), ...)``. It is a no-op (a plain copy with a batch-1
input) for models without these patterns.

More rewrites plug in as functions ``rewrite(rebuilder, layer) -> bool``, passed in
``rewrites`` next to the names: each is offered every layer not yet emitted, before the
rewrites above; one that matches emits the new layers through the :class:`Rebuilder` (its
graph queries, ``fold_conv_bn``, ``new`` and ``done``) and returns True. The two that
measurements rejected (narrow C-Ghost modules without CONCATENATION, convolutions split
over a concatenation's parts) live this way in ``benchmarks/tflite_rewrites.py``, next to
their measurements.
"""

import keras
import numpy as np
from keras import layers

from ghostnet_keras import keras_graph

__all__ = ["Rebuilder", "export_graph"]

# The named rewrites (1., 3. and 4. above; BatchNormalization folding, 2., always applies),
# all of them the default: each paid in the whole model (benchmarks/results/).
REWRITES = ("stem", "gate", "concat_dw")
DEFAULT_REWRITES = REWRITES


@keras.saving.register_keras_serializable(package="ghostnet_keras_tflite")
class PadWithValues(layers.Layer):
    """Pads height and width with a per-channel constant (CONCATENATIONs in TFLite).

    ``padding`` is ``((top, bottom), (left, right))``; ``values`` has one entry
    per channel. Needs static height, width and batch size.
    """

    def __init__(self, padding, values, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)
        self.values = [float(v) for v in values]

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        batch, height, width, channels = inputs.shape
        values = keras.ops.cast(keras.ops.convert_to_tensor(self.values), inputs.dtype)

        def block(rows, cols):
            return keras.ops.broadcast_to(values, (batch, rows, cols, channels))

        parts = [block(height, left)] if left else []
        parts += [inputs] + ([block(height, right)] if right else [])
        x = keras.ops.concatenate(parts, axis=2) if len(parts) > 1 else inputs
        width += left + right
        parts = [block(top, width)] if top else []
        parts += [x] + ([block(bottom, width)] if bottom else [])
        return keras.ops.concatenate(parts, axis=1) if len(parts) > 1 else x

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        batch, height, width, channels = input_shape
        return (batch, height + top + bottom, width + left + right, channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "values": self.values}


def is_layer(layer, cls):
    """Whether ``layer`` is exactly of class ``cls`` (subclasses may compute otherwise)."""
    return type(layer) is cls


def _bn_scale_shift(bn):
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = beta - bn.moving_mean.numpy() * scale
    return scale, shift


def channel_ranges(parts):
    """``(index, part, start, stop)``: the channels each part of a concatenation fills."""
    start = 0
    for i, part in enumerate(parts):
        yield i, part, start, start + part.shape[-1]
        start += part.shape[-1]


def conv_weights(conv):
    kernel = conv.kernel.numpy()
    out_channels = kernel.shape[-1] if is_layer(conv, layers.Conv2D) else None
    if is_layer(conv, layers.DepthwiseConv2D):
        out_channels = kernel.shape[2] * kernel.shape[3]
    bias = conv.bias.numpy() if conv.use_bias else np.zeros(out_channels, kernel.dtype)
    return kernel, bias


def new_conv(conv, kernel, bias, name, activation=None, padding=None, **overrides):
    """A copy of ``conv`` (Conv2D or DepthwiseConv2D) with a bias and new weights."""
    config = conv.get_config()
    config.update(name=name, use_bias=True, activation=activation, **overrides)
    if padding is not None:
        config["padding"] = padding
    for key in ("kernel_initializer", "bias_initializer", "kernel_regularizer"):
        config.pop(key, None)
    new = conv.__class__.from_config(config)
    return new, [kernel, bias]


class Rebuilder:
    """Walks the Functional graph in order and emits the rewritten graph.

    For a rewrite: ``node``, ``input``, ``output``, ``users`` and ``sole_consumer`` query the
    old graph; ``new`` maps an old tensor's id to its new tensor, ``scale`` records that a
    new tensor holds the old one times a factor (``get`` applies it), and ``done`` holds the
    ids of old layers already emitted.
    """

    def __init__(self, model, rewrites):
        self.rewrites = rewrites
        self.model = model
        self.new = {}  # id(old KerasTensor) -> new KerasTensor
        self.scale = {}  # id(old tensor) -> s: the new tensor holds old * s
        self.done = set()  # ids of layers already emitted as part of a pattern
        self.consumers = {}
        self.graph_nodes = keras_graph.node_ids(model)
        for layer in model.operations:
            for node in self._nodes(layer):
                for t in keras.tree.flatten(node.arguments.args):
                    self.consumers.setdefault(id(t), []).append(layer)

    def _nodes(self, layer):
        nodes = [n for n in keras_graph.inbound_nodes(layer) if id(n) in self.graph_nodes]
        if len(nodes) > 1:
            raise ValueError(
                f"export_graph does not support shared layers. Received: layer={layer.name!r}"
            )
        return nodes

    def node(self, layer):
        return self._nodes(layer)[0]

    def output(self, layer):
        return self.node(layer).outputs[0]

    def input(self, layer):
        return self.node(layer).arguments.args[0]

    def users(self, tensor):
        """The layers that take the old ``tensor`` as an input."""
        return self.consumers.get(id(tensor), [])

    def is_output(self, tensor):
        return any(tensor is o for o in self.model.outputs)

    def sole_consumer(self, tensor):
        users = self.consumers.get(id(tensor), [])
        if len(users) != 1 or any(tensor is o for o in self.model.outputs):
            return None
        return users[0]

    def get(self, old, scale=1.0):
        """The new tensor for ``old``, materialising a pending scale unless ``scale`` matches."""
        tensor = self.new[id(old)]
        pending = self.scale.get(id(old), 1.0)
        if pending != scale:
            tensor = layers.Rescaling(scale / pending, name=f"{old.name}_rescale")(tensor)
        return tensor

    def fold_conv_bn(self, conv, kernel, bias):
        """Folds a sole-consumer BatchNormalization after ``conv``; returns the end layer."""
        end = conv
        bn = self.sole_consumer(self.output(conv))
        if is_layer(bn, layers.BatchNormalization) and bn.axis in (-1, [-1], 3, [3]):
            scale, shift = _bn_scale_shift(bn)
            if is_layer(conv, layers.DepthwiseConv2D):
                kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
            else:
                kernel = kernel * scale
            bias = bias * scale + shift
            self.done.add(id(bn))
            end = bn
        return kernel, bias, end

    def _gate(self, end):
        """Matches Rescaling(a, offset=b) -> ReLU(max_value=1) after ``end``."""
        rescale = self.sole_consumer(self.output(end))
        if not (is_layer(rescale, layers.Rescaling) and np.ndim(rescale.scale) == 0):
            return None
        if np.ndim(rescale.offset) != 0 or float(rescale.scale) <= 0:
            return None
        relu = self.sole_consumer(self.output(rescale))
        if not (
            is_layer(relu, layers.ReLU)
            and relu.max_value is not None
            and float(relu.max_value) == 1.0
            and not relu.negative_slope
            and not relu.threshold
        ):
            return None
        return rescale, relu

    def plain_relu(self, layer):
        return (
            is_layer(layer, layers.ReLU)
            and layer.max_value is None
            and not layer.negative_slope
            and not layer.threshold
        )

    def concat_parts(self, concat):
        """``(parts, sole consumer)`` of a channel concatenation of 4-D tensors, or None."""
        out = self.output(concat)
        parts = self.node(concat).arguments.args[0]
        if concat.axis not in (-1, 3) or len(out.shape) != 4 or len(parts) < 2:
            return None
        if any(len(p.shape) != 4 or p.shape[-1] is None for p in parts):
            return None
        return parts, self.sole_consumer(out)

    def concatenation(self, concat):
        """Rewrite 4.: the depthwise conv after a channel concatenation moved into its parts."""
        found = self.concat_parts(concat)
        if found is None or "concat_dw" not in self.rewrites:
            return False
        return self._depthwise_into_parts(concat, *found)

    def _depthwise_into_parts(self, concat, parts, user):
        """``[ZeroPadding2D ->] DepthwiseConv2D [-> BN] [-> ReLU]`` applied to each part."""
        pad = user if is_layer(user, layers.ZeroPadding2D) else None
        dw = self.sole_consumer(self.output(pad)) if pad is not None else user
        if not (
            is_layer(dw, layers.DepthwiseConv2D)
            and dw.depth_multiplier == 1
            and dw.activation in (None, keras.activations.linear)
        ):
            return False
        kernel, bias = conv_weights(dw)
        kernel, bias, end = self.fold_conv_bn(dw, kernel, bias)
        relu = self.sole_consumer(self.output(end))
        relu = relu if self.plain_relu(relu) else None
        outputs = []
        for i, part, start, stop in channel_ranges(parts):
            x = self.get(part)
            if pad is not None:
                x = layers.ZeroPadding2D(pad.padding, name=f"{pad.name}_export_{i}")(x)
            new, weights = new_conv(
                dw,
                kernel[:, :, start:stop].astype("float32"),
                bias[start:stop].astype("float32"),
                f"{dw.name}_export_{i}",
                activation="relu" if relu else None,
            )
            outputs.append(new(x))
            new.set_weights(weights)
        y = layers.Concatenate(axis=-1, name=f"{concat.name}_export")(outputs)
        done = {concat, pad, dw, end, relu}
        self.done.update(id(layer) for layer in done if layer is not None)
        self.new[id(self.output(relu or end))] = y
        return True

    def conv(self, conv):
        if conv.activation not in (None, keras.activations.linear):
            return self.generic(conv)
        x_old = self.input(conv)
        kernel, bias = conv_weights(conv)
        if not is_layer(conv, layers.DepthwiseConv2D):
            # Fold a pending scale of the input into the kernel (linear in the input).
            kernel = kernel / self.scale.get(id(x_old), 1.0)
            x = self.new[id(x_old)]
        else:
            x = self.get(x_old)
        kernel, bias, end = self.fold_conv_bn(conv, kernel, bias)
        activation = None
        out_scale = 1.0
        gate = self._gate(end) if "gate" in self.rewrites else None
        if gate is not None:
            rescale, relu = gate
            a, b = float(rescale.scale), float(rescale.offset)
            kernel, bias = kernel * 6 * a, bias * 6 * a + 6 * b
            activation = "relu6"
            out_scale = 6.0
            self.done.update({id(rescale), id(relu)})
            end = relu
        new, weights = new_conv(conv, kernel, bias, f"{conv.name}_export", activation)
        y = new(x)
        new.set_weights(weights)
        self.new[id(self.output(end))] = y
        if out_scale != 1.0:
            self.scale[id(self.output(end))] = out_scale

    def stem(self, norm):
        """Normalization -> [ZeroPadding2D] -> Conv2D [-> BN] as a conv on mean-padded pixels."""
        pad = self.sole_consumer(self.output(norm))
        conv = pad
        if is_layer(pad, layers.ZeroPadding2D):
            conv = self.sole_consumer(self.output(pad))
        else:
            pad = None
        shape = self.output(norm).shape
        if not (
            is_layer(conv, layers.Conv2D)
            and conv.activation in (None, keras.activations.linear)
            and conv.groups == 1
            and None not in shape[1:]
            and np.ndim(norm.mean) == 4
            and (conv.padding == "valid" or (pad is None and conv.kernel_size == (1, 1)))
        ):
            return False
        mean = np.asarray(norm.mean, "float64").reshape(-1)
        std = np.sqrt(np.asarray(norm.variance, "float64").reshape(-1))
        kernel, bias = conv_weights(conv)
        kernel, bias, end = self.fold_conv_bn(conv, kernel, bias)
        # conv_W((x' - mean) / std) + bias = conv_{W/std}(x') + bias - sum(W mean / std), where
        # x' is the raw image padded with the mean: zero in normalised space.
        new_kernel = kernel / std.reshape(1, 1, -1, 1)
        new_bias = bias - np.einsum("hwio,i->o", new_kernel, mean)
        x = self.new[id(self.input(norm))]
        padding = (0, 0), (0, 0)
        if pad is not None:
            (top, bottom), (left, right) = pad.padding
            # Drop trailing padding that no output reads (stride 2, even size: the bottom row).
            out_h, out_w = self.output(conv).shape[1:3]
            (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
            dh, dw = conv.dilation_rate
            bottom -= max(0, top + shape[1] + bottom - ((out_h - 1) * sh + (kh - 1) * dh + 1))
            right -= max(0, left + shape[2] + right - ((out_w - 1) * sw + (kw - 1) * dw + 1))
            padding = (top, max(bottom, 0)), (left, max(right, 0))
            x = PadWithValues(padding, mean, name=f"{pad.name}_export")(x)
        new, weights = new_conv(
            conv,
            new_kernel.astype("float32"),
            new_bias.astype("float32"),
            f"{conv.name}_export",
            padding="valid" if pad is not None else None,
        )
        y = new(x)
        new.set_weights(weights)
        self.done.update({id(norm), id(conv), id(end)} | ({id(pad)} if pad else set()))
        self.new[id(self.output(end))] = y
        return True

    def generic(self, layer):
        node = self.node(layer)
        args = node.arguments.args
        kwargs = node.arguments.kwargs
        linear = (
            is_layer(layer, layers.Multiply)
            or is_layer(layer, layers.ZeroPadding2D)
            or is_layer(layer, layers.Dropout)
            or (
                is_layer(layer, layers.ReLU)
                and layer.max_value is None
                and not layer.threshold
                and not layer.negative_slope
            )
        )
        olds = [t for t in keras.tree.flatten(args) if isinstance(t, keras.KerasTensor)]

        def new(t, get=None):
            if not isinstance(t, keras.KerasTensor):
                return t
            return get(t) if get else self.new[id(t)]

        scale = 1.0
        if linear and is_layer(layer, layers.Multiply):
            scale = float(np.prod([self.scale.get(id(t), 1.0) for t in olds]))
            new_args = keras.tree.map_structure(new, args)
        elif linear:
            scale = self.scale.get(id(olds[0]), 1.0)
            new_args = keras.tree.map_structure(new, args)
        else:
            new_args = keras.tree.map_structure(lambda t: new(t, self.get), args)
        y = layer(*new_args, **kwargs)
        self.new[id(node.outputs[0])] = y
        if scale != 1.0:
            self.scale[id(node.outputs[0])] = scale


def export_graph(model, input_shape=None, rewrites=DEFAULT_REWRITES):
    """Returns an equivalent fixed-batch-1 Functional model that converts to a faster TFLite graph.

    Args:
        model: a Keras Functional model with one image input (channels last).
        input_shape: ``(height, width, channels)``; defaults to the model's input
            shape, or 224x224 where it is unknown.
        rewrites: which rewrites to apply: names among ``"stem"`` (1. above), ``"gate"``
            (3.) and ``"concat_dw"`` (4.), and rewrite functions (see the module doc);
            BatchNormalization is always folded (2.). Default: ``DEFAULT_REWRITES`` (all
            the named ones).

    Returns:
        A new ``keras.Model`` computing the same function as ``model`` on a
        batch of one (float outputs agree to about 1e-6). Unchanged layers are
        shared with ``model``.
    """
    if not keras_graph.is_functional(model):
        raise ValueError(f"`model` must be a Keras Functional model. Received: model={model!r}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "export_graph needs a model with one input and one output. "
            f"Received: model with {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    from ghostnet_keras.profiler import image_shape, static_copy

    if isinstance(rewrites, str) or any(not callable(r) and r not in REWRITES for r in rewrites):
        raise ValueError(
            f"`rewrites` must be a collection of {', '.join(REWRITES)} and rewrite functions. "
            f"Received: rewrites={rewrites!r}"
        )
    names = tuple(r for r in rewrites if not callable(r))
    plugins = tuple(r for r in rewrites if callable(r))

    shape = image_shape(model, input_shape)
    if tuple(model.input_shape[1:]) != shape:
        static = static_copy(model, shape)
        static.set_weights(model.get_weights())
        model = static
    rebuilder = Rebuilder(model, names)
    inputs = keras.Input(batch_shape=(1, *shape), name=model.inputs[0].name)
    rebuilder.new[id(model.inputs[0])] = inputs
    for layer in model.operations:
        if isinstance(layer, layers.InputLayer) or id(layer) in rebuilder.done:
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"export_graph does not support nested models. Received: layer={layer.name!r}"
            )
        if any(rewrite(rebuilder, layer) for rewrite in plugins):
            continue
        if "stem" in names and is_layer(layer, layers.Normalization) and rebuilder.stem(layer):
            continue
        if is_layer(layer, layers.Concatenate) and rebuilder.concatenation(layer):
            continue
        if is_layer(layer, layers.Conv2D) or is_layer(layer, layers.DepthwiseConv2D):
            rebuilder.conv(layer)
            continue
        rebuilder.generic(layer)
    outputs = rebuilder.get(model.outputs[0])
    return keras.Model(inputs, outputs, name=f"{model.name}_export")
