"""The export-graph rewrites that measurements rejected, kept beside their measurements.

Both plug into ``tflite.optimize.export_graph`` as rewrite functions
(``export_graph(model, rewrites=(*DEFAULT_REWRITES, ghost))``) and compute the same function
as the model they rewrite (tests/test_tflite_benchmark.py checks it). ``tflite_latency.py``
times C-GhostNet-1.0 with each added to the defaults; the numbers are in
``results/tflite_latency.md``:

- ``ghost``: narrow C-Ghost modules without CONCATENATION. At high resolution and few
  channels (C-GhostNet's first block, 112x112x16 at width 1.0), ``concat[q, dw(q)]`` becomes
  a 1x1 conv producing ``q`` twice and one depthwise conv whose first half is the identity:
  two ops instead of three, no copy. It doubles the 1x1 conv's multiply-adds: it paid on an
  AVX-512 x86 and cost 0.1-0.2 ms on an AVX2 one, and phone CPUs are compute-bound.
- ``concat_conv``: a convolution split over the concatenation's parts. ``conv(concat[a, b])``
  (any kernel, no activation, optionally before BN) becomes ``conv_a(a) + conv_b(b)``: the
  copy of the wide concatenation is replaced by an ADD of the narrow output (a Ghost
  bottleneck's expansion feeding its projection). It paid in float32 microbenchmarks of
  single bottlenecks (15-88 us each) and cost a little in int8 (one more requantized
  output), but on the whole float32 C-GhostNet-1.0 its effect changed sign between runs
  (-0.23 to +0.10 ms in six) for 7 more ops.
"""

import keras
import numpy as np
from keras import layers

from tflite.optimize import channel_ranges, conv_weights, is_layer, new_conv

# The ghost rewrite paid in XNNPACK on AVX-512 (fp32 and int8) for outputs of at most 16
# channels on at least 112x112 positions, and cost time elsewhere.
GHOST_CONCAT_MAX_CHANNELS = 16
GHOST_CONCAT_MIN_POSITIONS = 112 * 112


def ghost(rebuilder, conv):
    """C-Ghost module ``concat[q, dw(q)]`` on a narrow tensor as two ops, no CONCATENATION.

    ``q = [ReLU](BN(conv1x1(x)))`` with ``n`` channels, ``c = [ReLU](BN(dw(q)))``,
    ``Concatenate([q, c])``. When the output has at most ``GHOST_CONCAT_MAX_CHANNELS``
    channels and ``GHOST_CONCAT_MIN_POSITIONS`` positions, emit a 1x1 conv making
    ``[q, q]`` (the kernel twice) and a depthwise conv whose first ``n`` kernels are the
    identity, giving ``[q, c]`` in place. At 112x112x16 this is faster in XNNPACK than
    the copy of a concatenation; on wider or smaller tensors the doubled 1x1 conv costs
    more than the copy saves, so they are left alone.
    """
    if not is_layer(conv, layers.Conv2D):
        return False
    if conv.kernel_size != (1, 1) or conv.strides != (1, 1) or conv.groups != 1:
        return False
    if conv.activation not in (None, keras.activations.linear):
        return False
    kernel, bias = conv_weights(conv)
    kernel, bias, end = rebuilder.fold_conv_bn(conv, kernel, bias)
    primary_relu = None
    users = rebuilder.users(rebuilder.output(end))
    if len(users) == 1 and rebuilder.plain_relu(users[0]):
        primary_relu = users[0]
        q = rebuilder.output(primary_relu)
    else:
        q = rebuilder.output(end)
    users = rebuilder.users(q)
    if len(users) != 2 or rebuilder.is_output(q):
        return False
    cheap = next((u for u in users if is_layer(u, layers.DepthwiseConv2D)), None)
    concat = next((u for u in users if is_layer(u, layers.Concatenate)), None)
    if cheap is None or concat is None or rebuilder.input(cheap) is not q:
        return False
    if (
        cheap.strides != (1, 1)
        or cheap.depth_multiplier != 1
        or cheap.padding != "same"
        or cheap.dilation_rate != (1, 1)
        or cheap.activation not in (None, keras.activations.linear)
    ):
        return False
    dw_kernel, dw_bias = conv_weights(cheap)
    dw_kernel, dw_bias, cheap_end = rebuilder.fold_conv_bn(cheap, dw_kernel, dw_bias)
    cheap_relu = None
    c_users = rebuilder.users(rebuilder.output(cheap_end))
    if len(c_users) == 1 and rebuilder.plain_relu(c_users[0]):
        cheap_relu = c_users[0]
        c = rebuilder.output(cheap_relu)
    else:
        c = rebuilder.output(cheap_end)
    if rebuilder.users(c) != [concat] or cheap_relu and not primary_relu:
        return False
    parts = rebuilder.node(concat).arguments.args[0]
    if len(parts) != 2 or parts[0] is not q or parts[1] is not c or concat.axis not in (-1, 3):
        return False
    height, width, channels = rebuilder.output(concat).shape[1:]
    if channels > GHOST_CONCAT_MAX_CHANNELS or height * width < GHOST_CONCAT_MIN_POSITIONS:
        return False
    x_old = rebuilder.input(conv)
    kernel = kernel / rebuilder.scale.get(id(x_old), 1.0)
    wide, wide_weights = new_conv(
        conv,
        np.concatenate([kernel, kernel], axis=-1).astype("float32"),
        np.concatenate([bias, bias]).astype("float32"),
        f"{conv.name}_export_twice",
        activation="relu" if primary_relu else None,
        filters=2 * kernel.shape[-1],
    )
    y = wide(rebuilder.new[id(x_old)])
    wide.set_weights(wide_weights)
    kh, kw = dw_kernel.shape[:2]
    identity = np.zeros_like(dw_kernel)
    identity[kh // 2, kw // 2] = 1.0
    both, both_weights = new_conv(
        cheap,
        np.concatenate([identity, dw_kernel], axis=2).astype("float32"),
        np.concatenate([np.zeros_like(dw_bias), dw_bias]).astype("float32"),
        f"{cheap.name}_export_identity",
        activation="relu" if cheap_relu else None,
    )
    y = both(y)
    both.set_weights(both_weights)
    done = {conv, end, primary_relu, cheap, cheap_end, cheap_relu, concat}
    rebuilder.done.update(id(layer) for layer in done if layer is not None)
    rebuilder.new[id(rebuilder.output(concat))] = y
    return True


def concat_conv(rebuilder, concat):
    """``Conv2D [-> BN]`` (no activation) after a channel concatenation as one convolution
    per part, summed: ``conv(concat[a, b])`` becomes ``conv_a(a) + conv_b(b)``."""
    if not is_layer(concat, layers.Concatenate):
        return False
    found = rebuilder.concat_parts(concat)
    if found is None:
        return False
    parts, user = found
    if not (
        is_layer(user, layers.Conv2D)
        and user.groups == 1
        and user.activation in (None, keras.activations.linear)
    ):
        return False
    kernel, bias = conv_weights(user)
    kernel, bias, end = rebuilder.fold_conv_bn(user, kernel, bias)
    outputs = []
    for i, part, start, stop in channel_ranges(parts):
        # Linear in the input: a pending scale of the part goes into its kernel slice.
        part_kernel = kernel[:, :, start:stop] / rebuilder.scale.get(id(part), 1.0)
        part_bias = bias if i == 0 else np.zeros_like(bias)
        new, weights = new_conv(
            user,
            part_kernel.astype("float32"),
            part_bias.astype("float32"),
            f"{user.name}_export_{i}",
        )
        outputs.append(new(rebuilder.new[id(part)]))
        new.set_weights(weights)
    y = layers.Add(name=f"{user.name}_export_sum")(outputs)
    rebuilder.done.update({id(concat), id(user), id(end)})
    rebuilder.new[id(rebuilder.output(end))] = y
    return True


# The rewrites by the names the latency table gives them.
REJECTED = {"ghost": ghost, "concat_conv": concat_conv}
