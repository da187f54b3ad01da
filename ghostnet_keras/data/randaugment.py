"""RandAugment (Cubuk et al. 2020) in TensorFlow, on float32 0-255 RGB images."""

import math
import re

import tensorflow as tf


def gray(image):
    """Luma (ITU-R 601) of a float RGB image, keeping a channel axis of 1."""
    return tf.tensordot(image, tf.constant([0.299, 0.587, 0.114]), axes=1)[..., None]


def parse_randaugment(value):
    """``(num_ops, magnitude)`` from a ``randaugment`` argument, or None when off."""
    if value is None or value is False or value == "" or value == 0:
        return None
    original = value
    if value is True:
        value = (2, 9)
    elif isinstance(value, int):
        value = (2, value)
    elif isinstance(value, str):
        text = value.strip().lower()
        m = re.fullmatch(r"(\d+),(\d+(?:\.\d+)?)", text)
        if m:
            value = (int(m.group(1)), float(m.group(2)))
        else:
            parts = dict(re.findall(r"-([mn])(\d+(?:\.\d+)?)", text))
            if not text.startswith("rand") or not parts:
                value = None
            else:
                value = (int(float(parts.get("n", 2))), float(parts.get("m", 9)))
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not 1 <= int(value[0]) <= 10
        or not 0 <= float(value[1]) <= 30
    ):
        raise ValueError(
            "`randaugment` must be off (None/False), True, a magnitude, (num_ops, magnitude) or "
            f"a string such as '2,9' or 'rand-m9-n2'. Received: randaugment={original!r}"
        )
    return int(value[0]), float(value[1])


def _blend(image, other, factor):
    return tf.clip_by_value(other + (image - other) * factor, 0.0, 255.0)


def _affine(image, transform):
    """Applies a 2x3 affine map (output -> input pixel coordinates), filling with grey."""
    transform = tf.concat([tf.cast(transform, tf.float32), tf.zeros([2])], 0)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=128.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def equalize(image):
    """PIL's ImageOps.equalize, channel by channel, on a 0-255 float image."""

    def channel(values):
        values = tf.round(values)
        hist = tf.histogram_fixed_width(values, [0.0, 256.0], nbins=256)
        nonzero = tf.boolean_mask(hist, hist > 0)
        step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

        def apply():
            lut = (tf.cumsum(hist) + step // 2) // tf.maximum(step, 1)
            lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
            return tf.cast(tf.gather(lut, tf.cast(values, tf.int32)), tf.float32)

        return tf.cond(step > 0, apply, lambda: values)

    return tf.stack([channel(image[..., c]) for c in range(3)], -1)


def rand_augment(image, seed, num_ops, magnitude):
    """RandAugment (Cubuk et al. 2020) on a float 0-255 image: ``num_ops`` operations drawn
    uniformly from 14 (identity, autocontrast, equalize, rotate, solarize, colour, posterize,
    contrast, brightness, sharpness, shear x/y, translate x/y), each at ``magnitude`` on the
    paper's 0-10 scale (timm's ranges; geometric and enhancement ops get a random sign)."""
    level = magnitude / 10.0
    size = tf.cast(tf.shape(image)[:2], tf.float32)

    def ops(image, signed):
        angle = signed * 30.0 * level * math.pi / 180.0
        cos, sin = tf.cos(angle), tf.sin(angle)
        cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2
        rotate = [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy]
        enhance = 1.0 + signed * 0.9 * level
        shear = signed * 0.3 * level
        shift = signed * 0.45 * level
        bits = 8 - int(round(level * 4))
        posterize_step = float(2 ** (8 - max(bits, 1)))
        low = tf.reduce_min(image, axis=[0, 1])
        high = tf.reduce_max(image, axis=[0, 1])
        blur = tf.nn.depthwise_conv2d(
            tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"),
            tf.tile(
                tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32)[:, :, None, None] / 13,
                [1, 1, 3, 1],
            ),
            [1, 1, 1, 1],
            "VALID",
        )[0]
        threshold = 256.0 - 256.0 * level
        return [
            lambda: image,
            lambda: tf.where(
                high > low, (image - low) * 255.0 / tf.maximum(high - low, 1e-3), image
            ),
            lambda: equalize(image),
            lambda: _affine(image, rotate),
            lambda: tf.where(image >= threshold, 255.0 - image, image),
            lambda: _blend(image, gray(image), enhance),
            lambda: tf.floor(image / posterize_step) * posterize_step,
            lambda: _blend(image, tf.reduce_mean(gray(image)), enhance),
            lambda: _blend(image, tf.zeros_like(image), enhance),
            lambda: _blend(image, blur, enhance),
            lambda: _affine(image, [1.0, shear, 0.0, 0.0, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, 0.0, shear, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, shift * size[1], 0.0, 1.0, 0.0]),
            lambda: _affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, shift * size[0]]),
        ]

    seeds = tf.random.experimental.stateless_split(seed, 2 * num_ops)
    for i in range(num_ops):
        index = tf.random.stateless_uniform([], seeds[2 * i], 0, 14, dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform([], seeds[2 * i + 1]) < 0.5, -1.0, 1.0)
        image = tf.switch_case(index, ops(image, sign))
        image = tf.clip_by_value(image, 0.0, 255.0)
        image.set_shape([None, None, 3])
    return image
