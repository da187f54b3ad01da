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

4. **Narrow C-Ghost modules without CONCATENATION.** At high resolution and few
   channels (C-GhostNet's first block, 112x112x16 at width 1.0), ``concat[q, dw(q)]``
   becomes a 1x1 conv producing ``q`` twice and one depthwise conv whose first half
   is the identity: two ops instead of three, no copy. Not a default: it doubles the 1x1
   conv's multiply-adds; it paid on an AVX-512 x86 and cost 0.1-0.2 ms on an AVX2 one.

5. **Depthwise convolution before the concatenation.** ``dw(concat[a, b])`` (a
   depthwise conv, optionally after ``ZeroPadding2D`` and before BN and ReLU, all per
   channel) becomes ``concat[dw_a(a), dw_b(b)]``. In a stride-2 Ghost bottleneck the
   concatenation then copies a quarter of the data (C-GhostNet's 112x112x48 expansion:
   56x56x48). Measured on x86 (AVX2): -0.18 ms float32 and -0.07 ms int8 on that block.
6. **Convolution split over the concatenation's parts.** ``conv(concat[a, b])`` (any
   kernel, no activation, optionally before BN) becomes ``conv_a(a) + conv_b(b)``: the
   copy of the wide concatenation is replaced by an ADD of the narrow output (a Ghost
   bottleneck's expansion feeding its projection). Not a default: it paid in float32
   microbenchmarks of single bottlenecks (15-88 us each) and cost a little in int8 (one
   more requantized output), but on the whole float32 C-GhostNet-1.0 its effect changed
   sign between runs (-0.23 to +0.10 ms in six) for 7 more ops.

``DEFAULT_REWRITES`` are the rewrites that paid in the whole model, in float32 and int8, on
x86 (see ``benchmarks/results/tflite_latency.md``). Use it before converting:
``convert_model(export_graph(model), ...)``. It is
a no-op (a plain copy with a batch-1 input) for models without these patterns.
"""

import keras
import numpy as np
from keras import layers

__all__ = [
    "export_graph",
    "finish_flatbuffer",
    "float_depthwise",
    "float_softmax",
]

# The ghost-module rewrite (4. above) pays in XNNPACK on AVX-512 (fp32 and int8) for
# outputs of at most 16 channels on at least 112x112 positions, and costs time elsewhere.
GHOST_CONCAT_MAX_CHANNELS = 16
GHOST_CONCAT_MIN_POSITIONS = 112 * 112
REWRITES = ("stem", "gate", "ghost", "concat_dw", "concat_conv")
# Measured on x86 with XNNPACK (benchmarks/results/). "ghost" trades a copy for extra
# multiply-adds: it paid on an AVX-512 machine and cost 0.1-0.2 ms on an AVX2 one, and phone
# CPUs are compute-bound; "concat_conv" did not pay measurably in the whole model.
DEFAULT_REWRITES = ("stem", "gate", "concat_dw")


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


def _is(layer, cls):
    return type(layer) is cls


def _bn_scale_shift(bn):
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = beta - bn.moving_mean.numpy() * scale
    return scale, shift


def _channel_ranges(parts):
    """``(index, part, start, stop)``: the channels each part of a concatenation fills."""
    start = 0
    for i, part in enumerate(parts):
        yield i, part, start, start + part.shape[-1]
        start += part.shape[-1]


def _conv_weights(conv):
    kernel = conv.kernel.numpy()
    out_channels = kernel.shape[-1] if _is(conv, layers.Conv2D) else None
    if _is(conv, layers.DepthwiseConv2D):
        out_channels = kernel.shape[2] * kernel.shape[3]
    bias = conv.bias.numpy() if conv.use_bias else np.zeros(out_channels, kernel.dtype)
    return kernel, bias


def _new_conv(conv, kernel, bias, name, activation=None, padding=None, **overrides):
    """A copy of ``conv`` (Conv2D or DepthwiseConv2D) with a bias and new weights."""
    config = conv.get_config()
    config.update(name=name, use_bias=True, activation=activation, **overrides)
    if padding is not None:
        config["padding"] = padding
    for key in ("kernel_initializer", "bias_initializer", "kernel_regularizer"):
        config.pop(key, None)
    new = conv.__class__.from_config(config)
    return new, [kernel, bias]


class _Rebuilder:
    """Walks the Functional graph in order and emits the rewritten graph."""

    def __init__(self, model, rewrites):
        self.rewrites = rewrites
        self.model = model
        self.new = {}  # id(old KerasTensor) -> new KerasTensor
        self.scale = {}  # id(old tensor) -> s: the new tensor holds old * s
        self.done = set()  # ids of layers already emitted as part of a pattern
        self.consumers = {}
        self.graph_nodes = {id(n) for ns in model._nodes_by_depth.values() for n in ns}
        for layer in model.operations:
            for node in self._nodes(layer):
                for t in keras.tree.flatten(node.arguments.args):
                    self.consumers.setdefault(id(t), []).append(layer)

    def _nodes(self, layer):
        nodes = [n for n in layer._inbound_nodes if id(n) in self.graph_nodes]
        if len(nodes) > 1:
            raise ValueError(
                f"export_graph does not support shared layers. Received: layer={layer.name!r}"
            )
        return nodes

    def _node(self, layer):
        return self._nodes(layer)[0]

    def _output(self, layer):
        return self._node(layer).outputs[0]

    def _input(self, layer):
        return self._node(layer).arguments.args[0]

    def _sole_consumer(self, tensor):
        users = self.consumers.get(id(tensor), [])
        if len(users) != 1 or any(tensor is o for o in self.model.outputs):
            return None
        return users[0]

    def _get(self, old, scale=1.0):
        """The new tensor for ``old``, materialising a pending scale unless ``scale`` matches."""
        tensor = self.new[id(old)]
        pending = self.scale.get(id(old), 1.0)
        if pending != scale:
            tensor = layers.Rescaling(scale / pending, name=f"{old.name}_rescale")(tensor)
        return tensor

    def _fold_conv_bn(self, conv, kernel, bias):
        """Folds a sole-consumer BatchNormalization after ``conv``; returns the end layer."""
        end = conv
        bn = self._sole_consumer(self._output(conv))
        if _is(bn, layers.BatchNormalization) and bn.axis in (-1, [-1], 3, [3]):
            scale, shift = _bn_scale_shift(bn)
            if _is(conv, layers.DepthwiseConv2D):
                kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
            else:
                kernel = kernel * scale
            bias = bias * scale + shift
            self.done.add(id(bn))
            end = bn
        return kernel, bias, end

    def _gate(self, end):
        """Matches Rescaling(a, offset=b) -> ReLU(max_value=1) after ``end``."""
        rescale = self._sole_consumer(self._output(end))
        if not (_is(rescale, layers.Rescaling) and np.ndim(rescale.scale) == 0):
            return None
        if np.ndim(rescale.offset) != 0 or float(rescale.scale) <= 0:
            return None
        relu = self._sole_consumer(self._output(rescale))
        if not (
            _is(relu, layers.ReLU)
            and relu.max_value is not None
            and float(relu.max_value) == 1.0
            and not relu.negative_slope
            and not relu.threshold
        ):
            return None
        return rescale, relu

    def _plain_relu(self, layer):
        return (
            _is(layer, layers.ReLU)
            and layer.max_value is None
            and not layer.negative_slope
            and not layer.threshold
        )

    def ghost_module(self, conv):
        """C-Ghost module ``concat[q, dw(q)]`` on a narrow tensor as two ops, no CONCATENATION.

        ``q = [ReLU](BN(conv1x1(x)))`` with ``n`` channels, ``c = [ReLU](BN(dw(q)))``,
        ``Concatenate([q, c])``. When the output has at most ``GHOST_CONCAT_MAX_CHANNELS``
        channels and ``GHOST_CONCAT_MIN_POSITIONS`` positions, emit a 1x1 conv making
        ``[q, q]`` (the kernel twice) and a depthwise conv whose first ``n`` kernels are the
        identity, giving ``[q, c]`` in place. At 112x112x16 this is faster in XNNPACK than
        the copy of a concatenation; on wider or smaller tensors the doubled 1x1 conv costs
        more than the copy saves, so they are left alone.
        """
        if conv.kernel_size != (1, 1) or conv.strides != (1, 1) or conv.groups != 1:
            return False
        if conv.activation not in (None, keras.activations.linear):
            return False
        kernel, bias = _conv_weights(conv)
        kernel, bias, end = self._fold_conv_bn(conv, kernel, bias)
        primary_relu = None
        users = self.consumers.get(id(self._output(end)), [])
        if len(users) == 1 and self._plain_relu(users[0]):
            primary_relu = users[0]
            q = self._output(primary_relu)
        else:
            q = self._output(end)
        users = self.consumers.get(id(q), [])
        if len(users) != 2 or any(q is o for o in self.model.outputs):
            return False
        cheap = next((u for u in users if _is(u, layers.DepthwiseConv2D)), None)
        concat = next((u for u in users if _is(u, layers.Concatenate)), None)
        if cheap is None or concat is None or self._input(cheap) is not q:
            return False
        if (
            cheap.strides != (1, 1)
            or cheap.depth_multiplier != 1
            or cheap.padding != "same"
            or cheap.dilation_rate != (1, 1)
            or cheap.activation not in (None, keras.activations.linear)
        ):
            return False
        dw_kernel, dw_bias = _conv_weights(cheap)
        dw_kernel, dw_bias, cheap_end = self._fold_conv_bn(cheap, dw_kernel, dw_bias)
        cheap_relu = None
        c_users = self.consumers.get(id(self._output(cheap_end)), [])
        if len(c_users) == 1 and self._plain_relu(c_users[0]):
            cheap_relu = c_users[0]
            c = self._output(cheap_relu)
        else:
            c = self._output(cheap_end)
        if self.consumers.get(id(c), []) != [concat] or cheap_relu and not primary_relu:
            return False
        parts = self._node(concat).arguments.args[0]
        if len(parts) != 2 or parts[0] is not q or parts[1] is not c or concat.axis not in (-1, 3):
            return False
        height, width, channels = self._output(concat).shape[1:]
        if channels > GHOST_CONCAT_MAX_CHANNELS or height * width < GHOST_CONCAT_MIN_POSITIONS:
            return False
        x_old = self._input(conv)
        kernel = kernel / self.scale.get(id(x_old), 1.0)
        wide, wide_weights = _new_conv(
            conv,
            np.concatenate([kernel, kernel], axis=-1).astype("float32"),
            np.concatenate([bias, bias]).astype("float32"),
            f"{conv.name}_export_twice",
            activation="relu" if primary_relu else None,
            filters=2 * kernel.shape[-1],
        )
        y = wide(self.new[id(x_old)])
        wide.set_weights(wide_weights)
        kh, kw = dw_kernel.shape[:2]
        identity = np.zeros_like(dw_kernel)
        identity[kh // 2, kw // 2] = 1.0
        both, both_weights = _new_conv(
            cheap,
            np.concatenate([identity, dw_kernel], axis=2).astype("float32"),
            np.concatenate([np.zeros_like(dw_bias), dw_bias]).astype("float32"),
            f"{cheap.name}_export_identity",
            activation="relu" if cheap_relu else None,
        )
        y = both(y)
        both.set_weights(both_weights)
        done = {conv, end, primary_relu, cheap, cheap_end, cheap_relu, concat}
        self.done.update(id(layer) for layer in done if layer is not None)
        self.new[id(self._output(concat))] = y
        return True

    def concatenation(self, concat):
        """Rewrites 5. and 6.: the sole consumer of a channel concatenation moved into its parts."""
        out = self._output(concat)
        parts = self._node(concat).arguments.args[0]
        if concat.axis not in (-1, 3) or len(out.shape) != 4 or len(parts) < 2:
            return False
        if any(len(p.shape) != 4 or p.shape[-1] is None for p in parts):
            return False
        user = self._sole_consumer(out)
        if "concat_dw" in self.rewrites and self._depthwise_into_parts(concat, parts, user):
            return True
        if "concat_conv" in self.rewrites and self._conv_over_parts(concat, parts, user):
            return True
        return False

    def _depthwise_into_parts(self, concat, parts, user):
        """``[ZeroPadding2D ->] DepthwiseConv2D [-> BN] [-> ReLU]`` applied to each part."""
        pad = user if _is(user, layers.ZeroPadding2D) else None
        dw = self._sole_consumer(self._output(pad)) if pad is not None else user
        if not (
            _is(dw, layers.DepthwiseConv2D)
            and dw.depth_multiplier == 1
            and dw.activation in (None, keras.activations.linear)
        ):
            return False
        kernel, bias = _conv_weights(dw)
        kernel, bias, end = self._fold_conv_bn(dw, kernel, bias)
        relu = self._sole_consumer(self._output(end))
        relu = relu if self._plain_relu(relu) else None
        outputs = []
        for i, part, start, stop in _channel_ranges(parts):
            x = self._get(part)
            if pad is not None:
                x = layers.ZeroPadding2D(pad.padding, name=f"{pad.name}_export_{i}")(x)
            new, weights = _new_conv(
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
        self.new[id(self._output(relu or end))] = y
        return True

    def _conv_over_parts(self, concat, parts, user):
        """``Conv2D [-> BN]`` (no activation) as one convolution per part, summed."""
        if not (
            _is(user, layers.Conv2D)
            and user.groups == 1
            and user.activation in (None, keras.activations.linear)
        ):
            return False
        kernel, bias = _conv_weights(user)
        kernel, bias, end = self._fold_conv_bn(user, kernel, bias)
        outputs = []
        for i, part, start, stop in _channel_ranges(parts):
            # Linear in the input: a pending scale of the part goes into its kernel slice.
            part_kernel = kernel[:, :, start:stop] / self.scale.get(id(part), 1.0)
            part_bias = bias if i == 0 else np.zeros_like(bias)
            new, weights = _new_conv(
                user,
                part_kernel.astype("float32"),
                part_bias.astype("float32"),
                f"{user.name}_export_{i}",
            )
            outputs.append(new(self.new[id(part)]))
            new.set_weights(weights)
        y = layers.Add(name=f"{user.name}_export_sum")(outputs)
        self.done.update({id(concat), id(user), id(end)})
        self.new[id(self._output(end))] = y
        return True

    def conv(self, conv):
        if conv.activation not in (None, keras.activations.linear):
            return self.generic(conv)
        x_old = self._input(conv)
        kernel, bias = _conv_weights(conv)
        if not _is(conv, layers.DepthwiseConv2D):
            # Fold a pending scale of the input into the kernel (linear in the input).
            kernel = kernel / self.scale.get(id(x_old), 1.0)
            x = self.new[id(x_old)]
        else:
            x = self._get(x_old)
        kernel, bias, end = self._fold_conv_bn(conv, kernel, bias)
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
        new, weights = _new_conv(conv, kernel, bias, f"{conv.name}_export", activation)
        y = new(x)
        new.set_weights(weights)
        self.new[id(self._output(end))] = y
        if out_scale != 1.0:
            self.scale[id(self._output(end))] = out_scale

    def stem(self, norm):
        """Normalization -> [ZeroPadding2D] -> Conv2D [-> BN] as a conv on mean-padded pixels."""
        pad = self._sole_consumer(self._output(norm))
        conv = pad
        if _is(pad, layers.ZeroPadding2D):
            conv = self._sole_consumer(self._output(pad))
        else:
            pad = None
        shape = self._output(norm).shape
        if not (
            _is(conv, layers.Conv2D)
            and conv.activation in (None, keras.activations.linear)
            and conv.groups == 1
            and None not in shape[1:]
            and np.ndim(norm.mean) == 4
            and (conv.padding == "valid" or (pad is None and conv.kernel_size == (1, 1)))
        ):
            return False
        mean = np.asarray(norm.mean, "float64").reshape(-1)
        std = np.sqrt(np.asarray(norm.variance, "float64").reshape(-1))
        kernel, bias = _conv_weights(conv)
        kernel, bias, end = self._fold_conv_bn(conv, kernel, bias)
        # conv_W((x' - mean) / std) + bias = conv_{W/std}(x') + bias - sum(W mean / std), where
        # x' is the raw image padded with the mean: zero in normalised space.
        new_kernel = kernel / std.reshape(1, 1, -1, 1)
        new_bias = bias - np.einsum("hwio,i->o", new_kernel, mean)
        x = self.new[id(self._input(norm))]
        padding = (0, 0), (0, 0)
        if pad is not None:
            (top, bottom), (left, right) = pad.padding
            # Drop trailing padding that no output reads (stride 2, even size: the bottom row).
            out_h, out_w = self._output(conv).shape[1:3]
            (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
            dh, dw = conv.dilation_rate
            bottom -= max(0, top + shape[1] + bottom - ((out_h - 1) * sh + (kh - 1) * dh + 1))
            right -= max(0, left + shape[2] + right - ((out_w - 1) * sw + (kw - 1) * dw + 1))
            padding = (top, max(bottom, 0)), (left, max(right, 0))
            x = PadWithValues(padding, mean, name=f"{pad.name}_export")(x)
        new, weights = _new_conv(
            conv,
            new_kernel.astype("float32"),
            new_bias.astype("float32"),
            f"{conv.name}_export",
            padding="valid" if pad is not None else None,
        )
        y = new(x)
        new.set_weights(weights)
        self.done.update({id(norm), id(conv), id(end)} | ({id(pad)} if pad else set()))
        self.new[id(self._output(end))] = y
        return True

    def generic(self, layer):
        node = self._node(layer)
        args = node.arguments.args
        kwargs = node.arguments.kwargs
        linear = (
            _is(layer, layers.Multiply)
            or _is(layer, layers.ZeroPadding2D)
            or _is(layer, layers.Dropout)
            or (
                _is(layer, layers.ReLU)
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
        if linear and _is(layer, layers.Multiply):
            scale = float(np.prod([self.scale.get(id(t), 1.0) for t in olds]))
            new_args = keras.tree.map_structure(new, args)
        elif linear:
            scale = self.scale.get(id(olds[0]), 1.0)
            new_args = keras.tree.map_structure(new, args)
        else:
            new_args = keras.tree.map_structure(lambda t: new(t, self._get), args)
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
        rewrites: which rewrites to apply, among ``"stem"`` (1. above), ``"gate"`` (3.),
            ``"ghost"`` (4.), ``"concat_dw"`` (5.) and ``"concat_conv"`` (6.);
            BatchNormalization is always folded (2.). Default: ``DEFAULT_REWRITES``
            (``"stem"``, ``"gate"``, ``"concat_dw"``).

    Returns:
        A new ``keras.Model`` computing the same function as ``model`` on a
        batch of one (float outputs agree to about 1e-6). Unchanged layers are
        shared with ``model``.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"`model` must be a Keras Functional model. Received: model={model!r}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "export_graph needs a model with one input and one output. "
            f"Received: model with {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    from ghostnet_keras.profiler import _input_shape, static_copy

    unknown = set(rewrites) - set(REWRITES)
    if unknown or isinstance(rewrites, str):
        raise ValueError(
            f"`rewrites` must be a collection of {', '.join(REWRITES)}. "
            f"Received: rewrites={rewrites!r}"
        )

    shape = _input_shape(model, input_shape)
    if tuple(model.input_shape[1:]) != shape:
        static = static_copy(model, shape)
        static.set_weights(model.get_weights())
        model = static
    rebuilder = _Rebuilder(model, rewrites)
    inputs = keras.Input(batch_shape=(1, *shape), name=model.inputs[0].name)
    rebuilder.new[id(model.inputs[0])] = inputs
    for layer in model.operations:
        if isinstance(layer, layers.InputLayer) or id(layer) in rebuilder.done:
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"export_graph does not support nested models. Received: layer={layer.name!r}"
            )
        if "stem" in rewrites and _is(layer, layers.Normalization) and rebuilder.stem(layer):
            continue
        if "ghost" in rewrites and _is(layer, layers.Conv2D) and rebuilder.ghost_module(layer):
            continue
        if _is(layer, layers.Concatenate) and rebuilder.concatenation(layer):
            continue
        if _is(layer, layers.Conv2D) or _is(layer, layers.DepthwiseConv2D):
            rebuilder.conv(layer)
            continue
        rebuilder.generic(layer)
    outputs = rebuilder._get(model.outputs[0])
    return keras.Model(inputs, outputs, name=f"{model.name}_export")


def _opcode_index(model, builtin, version=1):
    """The index of ``builtin`` in ``model.operatorCodes``, adding the code if missing."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    for index, code in enumerate(model.operatorCodes):
        if flatbuffer_utils.get_builtin_code_from_operator_code(code) == builtin:
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
    delegate leaves to the reference kernel, in a second partition. This rewrites
    ``SOFTMAX(int8) -> DEQUANTIZE`` (float output) into ``DEQUANTIZE -> SOFTMAX(float)``, and
    a quantized model output ``SOFTMAX(int8)`` into ``DEQUANTIZE -> SOFTMAX -> QUANTIZE``
    (the output tensor keeps its type and quantization). The probabilities are then computed
    in float from the same int8 logits: no less accurate. Other models are returned unchanged.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    ops = schema.BuiltinOperator
    quantized = (schema.TensorType.INT8, schema.TensorType.UINT8)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    if len(model.subgraphs) != 1:
        return flatbuffer
    graph = model.subgraphs[0]

    def code(op):
        return flatbuffer_utils.get_builtin_code_from_operator_code(
            model.operatorCodes[op.opcodeIndex]
        )

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
        if code(op) != ops.SOFTMAX or graph.tensors[op.inputs[0]].type not in quantized:
            continue
        logits, probs = op.inputs[0], op.outputs[0]
        users = [o for o in graph.operators if probs in list(o.inputs)]
        dequantize = schema.OperatorT()
        dequantize.opcodeIndex = _opcode_index(model, ops.DEQUANTIZE)
        float_logits = new_float_tensor(graph.tensors[logits], b"_float")
        dequantize.inputs, dequantize.outputs = [logits], [float_logits]
        if len(users) == 1 and code(users[0]) == ops.DEQUANTIZE and probs not in graph.outputs:
            # SOFTMAX -> DEQUANTIZE(output): the softmax writes the float output directly.
            old = users[0]
            op.inputs, op.outputs = [float_logits], [old.outputs[0]]
            graph.operators.remove(old)
            graph.operators.insert(position, dequantize)
        elif not users and probs in list(graph.outputs):
            quantize = schema.OperatorT()
            quantize.opcodeIndex = _opcode_index(model, ops.QUANTIZE)
            float_probs = new_float_tensor(graph.tensors[probs], b"_float")
            quantize.inputs, quantize.outputs = [float_probs], [probs]
            op.inputs, op.outputs = [float_logits], [float_probs]
            graph.operators.insert(position, dequantize)
            graph.operators.insert(position + 2, quantize)
        else:
            continue
        changed = True
    if not changed:
        return flatbuffer
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    changed = False
    for graph in model.subgraphs:
        for op in graph.operators:
            code = flatbuffer_utils.get_builtin_code_from_operator_code(
                model.operatorCodes[op.opcodeIndex]
            )
            if code != schema.BuiltinOperator.DEPTHWISE_CONV_2D or len(op.inputs) < 2:
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
    if not changed:
        return flatbuffer
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def finish_flatbuffer(flatbuffer):
    """The flatbuffer rewrites, each a no-op where it does not apply: :func:`float_softmax`
    (full-integer models) and :func:`float_depthwise` (dynamic-range models)."""
    return float_depthwise(float_softmax(flatbuffer))
