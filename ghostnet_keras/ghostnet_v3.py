"""GhostNetV3: GhostNetV2 with re-parameterisable convolutions, and their folding.

Reference:
- [GhostNetV3: Exploring the Training Strategies for Compact Models](
  https://arxiv.org/abs/2404.11202) (2024)

The training form (what the builders return) is GhostNetV2's network in which every 1x1
primary conv + BN, every 3x3 depthwise cheap conv + BN and every strided depthwise conv + BN
is a sum of parallel branches (:func:`ghostnet_keras.blocks_v2.rep_conv_bn`): three conv + BN
branches, plus a 1x1 scale branch on the depthwise convs and a BN skip branch on the cheap
ones. :func:`reparameterize` folds every sum into one conv with a bias: the deployment form,
with the inference cost of GhostNetV2 (6,147,588 parameters at 1.0x instead of 8,129,028).

As in the official code and timm: the expansion module of every bottleneck from the third on
carries DFC attention (timm's mode "shortcut"), the projection module never does, and the
Ghost modules' BN and ReLU layers sit after the branch sum.

Knowledge distillation, the other half of the paper's training recipe, is a matter of the
training script, not of the network.
"""

import numpy as np

from ghostnet_keras import ghostnet_v2, keras_graph, skeleton


@skeleton.family(dropout_rate=0.2)
def GhostNetV3(width=1.0, *application):
    """Instantiates GhostNetV3 (training form) at any width multiplier.

    See `GhostNet100V3` for the other arguments; `ghostnet_keras.reparameterize`
    turns the result into the deployment form. The model is named
    `ghostnetv3_<100 x width>`.
    """
    return ghostnet_v2.architecture(3, width)


def _summary(width, params, deployed, macs):
    return ghostnet_v2.summary(
        title=f"GhostNetV3-{width}x (training form)",
        reference="[GhostNetV3: Exploring the Training Strategies for Compact Models]("
        "https://arxiv.org/abs/2404.11202) (2024)",
        description=(
            f"GhostNetV2-{width}x with re-parameterisable convolutions: each 1x1 primary, "
            "3x3 cheap and strided depthwise conv + BN is a sum of parallel branches at "
            f"training time ({params} parameters). `ghostnet_keras.reparameterize(model)` "
            f"folds them into single convolutions for inference ({deployed} parameters, "
            f"{macs} multiply-adds at 224x224)."
        ),
    )


GhostNet050V3 = ghostnet_v2.variant(
    GhostNetV3, 3, 0.5, _summary(0.5, "3,395,384", "2,853,176", "49.6M")
)
GhostNet100V3 = ghostnet_v2.variant(
    GhostNetV3, 3, 1.0, _summary(1.0, "8,129,028", "6,147,588", "167.0M")
)
GhostNet130V3 = ghostnet_v2.variant(
    GhostNetV3, 3, 1.3, _summary(1.3, "12,217,720", "8,948,296", "269.3M")
)
GhostNet160V3 = ghostnet_v2.variant(
    GhostNetV3, 3, 1.6, _summary(1.6, "17,275,700", "12,377,778", "398.6M")
)


# ---------------------------------------------------------------------------
# Re-parameterisation: training form -> deployment form.
# ---------------------------------------------------------------------------


def _branches(model):
    """``{prefix: [branch layer names]}`` of every re-parameterisable sum in ``model``."""
    import re

    pattern = re.compile(r"^(\w+?)_rpr_(?:conv_\d+_conv|conv_\d+_bn|scale_conv|scale_bn|skip)$")
    groups = {}
    for layer in model.layers:
        match = pattern.match(layer.name)
        if match:
            groups.setdefault(match.group(1), []).append(layer.name)
    return groups


def _fold_bn(bn):
    """``(scale, shift)`` of an inference-mode BatchNormalization layer, float64."""
    gamma, beta, mean, var = (np.asarray(w, "float64") for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _branch_kernel(conv, bn, kernel_size):
    """The kernel and bias of conv + BN, the kernel centred in ``kernel_size``."""
    scale, shift = _fold_bn(bn)
    kernel = np.asarray(conv.get_weights()[0], "float64")
    kh, kw = kernel.shape[:2]
    if conv.__class__.__name__ == "DepthwiseConv2D":
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    if (kh, kw) != kernel_size:
        top, left = (kernel_size[0] - kh) // 2, (kernel_size[1] - kw) // 2
        pad = [(top, kernel_size[0] - kh - top), (left, kernel_size[1] - kw - left), (0, 0)]
        kernel = np.pad(kernel, pad + [(0, 0)])
    return kernel, shift


def _fused_weights(model, prefix):
    """Kernel and bias of the one conv equal to the branch sum ``prefix`` of ``model``."""
    names = {layer.name for layer in model.layers}
    kernel_size = tuple(model.get_layer(f"{prefix}_rpr_conv_0_conv").kernel_size)
    kernel, bias = 0.0, 0.0
    i = 0
    while f"{prefix}_rpr_conv_{i}_conv" in names:
        k, b = _branch_kernel(
            model.get_layer(f"{prefix}_rpr_conv_{i}_conv"),
            model.get_layer(f"{prefix}_rpr_conv_{i}_bn"),
            kernel_size,
        )
        kernel, bias, i = kernel + k, bias + b, i + 1
    if f"{prefix}_rpr_scale_conv" in names:
        k, b = _branch_kernel(
            model.get_layer(f"{prefix}_rpr_scale_conv"),
            model.get_layer(f"{prefix}_rpr_scale_bn"),
            kernel_size,
        )
        kernel, bias = kernel + k, bias + b
    if f"{prefix}_rpr_skip" in names:  # BN of the input: a centred identity kernel
        scale, shift = _fold_bn(model.get_layer(f"{prefix}_rpr_skip"))
        identity = np.zeros(kernel.shape)
        identity[kernel_size[0] // 2, kernel_size[1] // 2, :, 0] = scale  # depthwise, m = 1
        kernel, bias = kernel + identity, bias + shift
    return [kernel.astype("float32"), np.asarray(bias, "float32")]


def reparameterize(model):
    """Returns the deployment form of a GhostNetV3 model (training form in, new model out).

    Every re-parameterisable sum (:func:`ghostnet_keras.blocks_v2.rep_conv_bn`, layers
    ``<p>_rpr_*`` summed by ``<p>_add``) becomes one convolution with a bias named
    ``<p>_conv`` (``blocks_3_0_ghost1_primary_conv``, ``blocks_3_0_dw_conv``: the names
    and the weights of timm's ``reparameterize_model``), whose output equals the sum's in
    inference: ``sum_i BN_i(conv_i(x)) = conv(x, sum_i k_i * s_i) + sum_i (beta_i - mu_i * s_i)``
    with ``s_i = gamma_i / sqrt(var_i + eps)``, the 1x1 scale kernel centred in the kxk one
    and the skip BN an identity kernel. Every other layer keeps its weights (copied: the
    input model is unchanged). A model without such sums is returned as it is.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a Keras model (a GhostNetV3 in its training form). "
            f"Received: model={model!r}"
        )
    groups = _branches(model)
    if not groups:
        return model
    adds = {f"{prefix}_add": prefix for prefix in groups}
    fused = {}

    def call_function(layer, *args, **kwargs):
        name = layer.name
        for prefix, members in groups.items():
            if name == f"{prefix}_rpr_conv_0_conv":
                config = layer.get_config()
                config.update(name=f"{prefix}_conv", use_bias=True)
                fused[prefix] = layer.__class__.from_config(config)
                return fused[prefix](*args, **kwargs)
            if name in members:
                return args[0]  # the other branches vanish; the sum takes branch 0's output
        if name in adds:
            return args[0][0]
        return layer(*args, **kwargs)

    deployed = keras_graph.rebuild(model, call_function=call_function)
    for layer in deployed.layers:
        if not layer.weights:
            continue
        if layer.name.endswith("_conv") and layer.name[: -len("_conv")] in fused:
            layer.set_weights(_fused_weights(model, layer.name[: -len("_conv")]))
        else:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return deployed
