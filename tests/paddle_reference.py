"""PaddleClas's GhostNet, written from the facts of PaddleClas's ``ghostnet.py``, with random
weights and random BatchNorm statistics: the reference of the ``.pdparams`` conversion.

Run as a script (PaddlePaddle crashes when it is imported after TensorFlow, so the tests run
it in a subprocess):

    python paddle_reference.py SCALE IMAGES.npy OUT_DIR

writes ``OUT_DIR/model.pdparams`` (``paddle.save`` of the state dict, as PaddleClas releases
its weights) and ``OUT_DIR/logits.npy`` (the model's logits for the 0-255 RGB NHWC images,
normalised with the ImageNet mean/std).

The facts (PaddleClas ``ppcls/arch/backbone/model_zoo/ghostnet.py``): every conv is a
``ConvBNLayer`` (``_conv`` without bias, ``_batch_norm`` with an optional ReLU); 16
bottlenecks ``_ghostbottleneck_<n>`` of the paper's Table 1 with ``ghost_module_1``
(ReLU), ``depthwise_conv`` on stride 2, ``se_block`` (pool, Linear ``squeeze`` to
``c // 4``, ReLU, Linear ``excitation``, ``clip(x, 0, 1)``, multiply), ``ghost_module_2``
(no ReLU) and a ``shortcut_depthwise`` + ``shortcut_conv`` when the shape changes; widths
``make_divisible(c * scale, 4)``; ``conv_last`` 1x1 + BN + ReLU; pooling; ``fc_0`` a 1x1
``ConvBNLayer`` to 1280 with ReLU; dropout; Linear ``fc_1``.
"""

import math
import sys

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")
# Table 1: kernel, expansion, output, SE, stride.
BOTTLENECKS = (
    (3, 16, 16, 0, 1),
    (3, 48, 24, 0, 2),
    (3, 72, 24, 0, 1),
    (5, 72, 40, 1, 2),
    (5, 120, 40, 1, 1),
    (3, 240, 80, 0, 2),
    (3, 200, 80, 0, 1),
    (3, 184, 80, 0, 1),
    (3, 184, 80, 0, 1),
    (3, 480, 112, 1, 1),
    (3, 672, 112, 1, 1),
    (5, 672, 160, 1, 2),
    (5, 960, 160, 0, 1),
    (5, 960, 160, 1, 1),
    (5, 960, 160, 0, 1),
    (5, 960, 160, 1, 1),
)


def divisible(value, divisor=4):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def build(scale, classes=1000):
    import paddle
    from paddle import nn
    from paddle.nn import functional

    class ConvBN(nn.Layer):
        def __init__(self, cin, cout, k, stride=1, groups=1, relu=True):
            super().__init__()
            self._conv = nn.Conv2D(
                cin, cout, k, stride, (k - 1) // 2, groups=groups, bias_attr=False
            )
            self._batch_norm = nn.BatchNorm(cout, act="relu" if relu else None)

        def forward(self, x):
            return self._batch_norm(self._conv(x))

    class SqueezeExcite(nn.Layer):
        def __init__(self, channels):
            super().__init__()
            self.squeeze = nn.Linear(channels, channels // 4)
            self.excitation = nn.Linear(channels // 4, channels)

        def forward(self, x):
            gate = functional.relu(self.squeeze(x.mean(axis=[2, 3])))
            gate = paddle.clip(self.excitation(gate), min=0, max=1)
            return x * gate.unsqueeze([2, 3])

    class GhostModule(nn.Layer):
        def __init__(self, cin, cout, relu):
            super().__init__()
            primary = math.ceil(cout / 2)
            self.primary_conv = ConvBN(cin, primary, 1, relu=relu)
            self.cheap_operation = ConvBN(primary, primary, 3, groups=primary, relu=relu)

        def forward(self, x):
            x = self.primary_conv(x)
            return paddle.concat([x, self.cheap_operation(x)], axis=1)

    class Bottleneck(nn.Layer):
        def __init__(self, cin, hidden, cout, k, stride, se):
            super().__init__()
            self.stride, self.se, self.identity = stride, se, stride == 1 and cin == cout
            self.ghost_module_1 = GhostModule(cin, hidden, True)
            if stride == 2:
                self.depthwise_conv = ConvBN(hidden, hidden, k, stride, hidden, relu=False)
            if se:
                self.se_block = SqueezeExcite(hidden)
            self.ghost_module_2 = GhostModule(hidden, cout, False)
            if not self.identity:
                self.shortcut_depthwise = ConvBN(cin, cin, k, stride, cin, relu=False)
                self.shortcut_conv = ConvBN(cin, cout, 1, relu=False)

        def forward(self, inputs):
            x = self.ghost_module_1(inputs)
            if self.stride == 2:
                x = self.depthwise_conv(x)
            if self.se:
                x = self.se_block(x)
            x = self.ghost_module_2(x)
            if self.identity:
                return x + inputs
            return x + self.shortcut_conv(self.shortcut_depthwise(inputs))

    class GhostNet(nn.Layer):
        def __init__(self):
            super().__init__()
            channels = divisible(16 * scale)
            self.conv1 = ConvBN(3, channels, 3, 2)
            self.bottlenecks = []
            for n, (k, exp, out, se, s) in enumerate(BOTTLENECKS):
                block = Bottleneck(
                    channels, divisible(exp * scale), divisible(out * scale), k, s, se
                )
                self.bottlenecks.append(self.add_sublayer(f"_ghostbottleneck_{n}", block))
                channels = divisible(out * scale)
            last = divisible(960 * scale)
            self.conv_last = ConvBN(channels, last, 1)
            self.fc_0 = ConvBN(last, 1280, 1)
            self.dropout = nn.Dropout(0.2)
            self.fc_1 = nn.Linear(1280, classes)

        def forward(self, x):
            x = self.conv1(x)
            for block in self.bottlenecks:
                x = block(x)
            x = self.conv_last(x).mean(axis=[2, 3], keepdim=True)
            x = self.dropout(self.fc_0(x)).flatten(1)
            return self.fc_1(x)

    return GhostNet()


def randomize(model, seed=0):
    """Random affine BatchNorm parameters and running statistics, and an O(10) classifier."""
    import paddle

    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name, value in state.items():
        n = value.shape
        if name.endswith("_batch_norm.weight"):
            value.set_value(rng.uniform(0.5, 1.5, n).astype("float32"))
        elif name.endswith("_batch_norm.bias"):
            value.set_value(rng.normal(0, 0.2, n).astype("float32"))
        elif name.endswith("._mean"):
            value.set_value(rng.normal(0, 0.2, n).astype("float32"))
        elif name.endswith("._variance"):
            value.set_value(rng.uniform(0.5, 2.0, n).astype("float32"))
        elif name.endswith(".bias"):  # the Linear biases (SE and classifier) start at zero
            value.set_value(rng.uniform(-0.5, 0.5, n).astype("float32"))
    model.eval()
    return paddle


def main(scale, images_path, out_dir):
    import paddle

    paddle.seed(0)
    model = build(float(scale))
    randomize(model)
    images = np.load(images_path)
    x = paddle.to_tensor(((images / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).astype("float32"))
    with paddle.no_grad():
        logits = model(x).numpy()
    paddle.save(model.state_dict(), f"{out_dir}/model.pdparams")
    np.save(f"{out_dir}/logits.npy", logits)
    print(f"{len(model.state_dict())} tensors, logits up to {np.abs(logits).max():.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
