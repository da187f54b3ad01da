"""Image transforms on decoded images: the evaluation resize and centre crop, and the
training crops, flips and colour jitter (RandAugment in randaugment.py)."""

import math

import tensorflow as tf

from ghostnet_keras.constants import CROP_FRACTION, SMALL_IMAGE_SIZE
from ghostnet_keras.data.randaugment import gray, rand_augment

# Training crops: Inception-style random-resized-crop for ImageNet-size inputs.
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
COLOR_JITTER = 0.4


def jpeg_header_complete(contents):
    """False for a JPEG whose header ends before its first scan (no start-of-scan marker
    0xFFDA): truncated or garbled files. libjpeg would print "Improper call to JPEG library
    in state 201" on stderr for them, a line no setting silences, before failing."""
    data = tf.io.decode_raw(contents, tf.uint8)
    has_scan = tf.reduce_any(tf.logical_and(data[:-1] == 0xFF, data[1:] == 0xDA))
    return tf.logical_or(tf.logical_not(tf.io.is_jpeg(contents)), has_scan)


def checked(contents):
    """``contents``, failing (InvalidArgumentError) for a JPEG with an incomplete header, so
    that libjpeg never sees it."""
    ok = tf.debugging.Assert(jpeg_header_complete(contents), ["JPEG header incomplete"])
    with tf.control_dependencies([ok]):
        return tf.identity(contents)


def decode(contents):
    """Decodes any supported image to uint8 RGB [H, W, 3] (first frame of a GIF)."""
    image = tf.io.decode_image(checked(contents), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _resize(image, size, antialias=False):
    return tf.image.resize(image, size, method="bilinear", antialias=antialias)


def eval_transform(image, image_size=224, crop_fraction=CROP_FRACTION):
    """The evaluation transform: float32 [image_size, image_size, 3] from an [H, W, 3] image.

    The shorter side is resized (bilinear, antialiased) to ``floor(image_size / crop_fraction)``
    (256 for 224 at the default ``CROP_FRACTION``) and the central ``image_size`` square is
    cut out, as in timm's and torchvision's ImageNet evaluation. Images whose shorter side is
    already at most ``image_size`` (CIFAR's 32x32) are just resized to ``image_size`` x
    ``image_size``.
    """
    image = tf.convert_to_tensor(image)
    if not 0 < crop_fraction <= 1:
        raise ValueError(
            f"`crop_fraction` must be in (0, 1]. Received: crop_fraction={crop_fraction}"
        )
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)

    def plain():
        return _resize(image, [image_size, image_size], antialias=True)

    def resize_crop():
        # torchvision's Resize(int): the shorter side becomes `target`, the longer one
        # int(target * long / short).
        target = math.floor(image_size / crop_fraction)
        new_h = tf.where(height <= width, target, tf.cast(target * height // short, tf.int32))
        new_w = tf.where(height <= width, tf.cast(target * width // short, tf.int32), target)
        resized = _resize(image, [new_h, new_w], antialias=True)
        top = (new_h - image_size) // 2
        left = (new_w - image_size) // 2
        return resized[top : top + image_size, left : left + image_size]

    out = tf.cond(short <= image_size, plain, resize_crop)
    out.set_shape([image_size, image_size, 3])
    return out


def _color_jitter(image, seed, strength):
    """torchvision's ColorJitter(b, c, s) on a float 0-255 image: brightness, contrast and
    saturation factors drawn from [1 - strength, 1 + strength], applied in that order."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    factors = [
        tf.random.stateless_uniform([], seeds[i], 1 - strength, 1 + strength) for i in range(3)
    ]
    image = tf.clip_by_value(image * factors[0], 0.0, 255.0)
    mean = tf.reduce_mean(gray(image))
    image = tf.clip_by_value((image - mean) * factors[1] + mean, 0.0, 255.0)
    luma = gray(image)
    return tf.clip_by_value((image - luma) * factors[2] + luma, 0.0, 255.0)


def crop_window(shape, seed):
    """An Inception-style random crop window (offset, size) of an image of ``shape``: area
    fraction in CROP_AREA_RANGE, aspect ratio in CROP_ASPECT_RANGE (whole image after 10
    failed attempts)."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def train_transform(image_size, color_jitter, randaugment):
    """Returns fn(source, seed) -> float32 [S, S, 3], ``source`` an encoded image (string) or a
    decoded uint8 image."""
    small = image_size <= SMALL_IMAGE_SIZE
    pad = image_size // 8

    def crop_resize(source, seed):
        if source.dtype == tf.string:
            if small:
                image = decode(source)
            else:
                # JPEG: decode only the crop window, the main saving of ImageNet pipelines.
                def jpeg():
                    shape = tf.image.extract_jpeg_shape(checked(source))
                    begin, size = crop_window(shape, seed)
                    window = tf.stack([begin[0], begin[1], size[0], size[1]])
                    return tf.image.decode_and_crop_jpeg(source, window, channels=3)

                def other():
                    image = decode(source)
                    begin, size = crop_window(tf.shape(image), seed)
                    return tf.slice(image, begin, size)

                crop = tf.cond(tf.io.is_jpeg(source), jpeg, other)
                crop.set_shape([None, None, 3])
                return _resize(crop, [image_size, image_size])
        else:
            image = source
            if not small:
                begin, size = crop_window(tf.shape(image), seed)
                return _resize(tf.slice(image, begin, size), [image_size, image_size])
        # Small inputs (CIFAR): resize to the input size, pad by 1/8 and cut a random square.
        image = tf.cast(image, tf.float32)
        shape = tf.shape(image)
        image = tf.cond(
            tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size)),
            lambda: image,
            lambda: _resize(image, [image_size, image_size], antialias=True),
        )
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        return tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed)

    def transform(source, seed):
        seeds = tf.random.experimental.stateless_split(seed, 4)
        image = crop_resize(source, seeds[0])
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        if randaugment:
            image = rand_augment(image, seeds[2], *randaugment)
        elif color_jitter:
            image = _color_jitter(image, seeds[3], color_jitter)
        image.set_shape([image_size, image_size, 3])
        return image

    return transform
