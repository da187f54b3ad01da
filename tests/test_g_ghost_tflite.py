"""Every new family converts to a float32 TFLite model that agrees with Keras.

Small members of each family (the converter needs about 20 s per model on a loaded
2-core machine): a ResNet with C-Ghost convs and G-Ghost stages, a G-Ghost RegNetX with
grouped convs, and the G-GhostNet blocks (SE bottleneck, G-Ghost stage without last block).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import ghostnet_keras
from ghostnet_keras import blocks, g_ghostnet, regnet, resnet


def _convert_and_compare(model, shape, low=0.0, high=255.0, atol=1e-4):
    interpreter_module = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="TFLite runtime (ai-edge-litert) is needed"
    )
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(low, high, (1, *shape)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert lite.shape == expected.shape
    np.testing.assert_allclose(lite, expected, atol=atol, rtol=0)


def test_tflite_resnet_ghost_convs_and_g_ghost_stage():
    keras.utils.set_random_seed(0)
    model = resnet.resnet(
        ("basic", (3,), (16,), "cifar"),
        conv_ratio=2,
        ghost_ratio=0.5,
        full_input=True,
        classifier_activation=None,
    )
    _convert_and_compare(model, (32, 32, 3))


def test_tflite_g_ghost_regnetx_grouped_convs():
    keras.utils.set_random_seed(0)
    model = regnet.regnetx(((1, 3), (16, 48), 8), input_shape=(32, 32, 3), classes=10)
    assert model.get_layer("layer2_base_conv2").groups == 6
    assert model.get_layer("layer2_layers_0_conv2").groups == 4  # thin group width 6
    _convert_and_compare(model, (32, 32, 3))


def test_tflite_g_ghostnet_stage():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 16))
    x = blocks.g_ghost_stage(
        inputs,
        g_ghostnet._block,
        3,
        40,
        2,
        ghost_ratio=g_ghostnet.GHOST_RATIO,
        thin_divisor=g_ghostnet.THIN_DIVISOR,
        last_block=False,
        name="stage2",
    )
    # Features, not 0-255 images (no preprocessing layer in front of a bare stage).
    _convert_and_compare(keras.Model(inputs, x), (32, 32, 16), low=-1.0, high=1.0)


@pytest.mark.slow
def test_tflite_g_ghostnet_full():
    keras.utils.set_random_seed(0)
    model = ghostnet_keras.GGhostNet050(input_shape=(32, 32, 3))
    _convert_and_compare(model, (32, 32, 3))
