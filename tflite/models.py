"""The Keras model a `tflite` command names: a registry name or a saved ``.keras`` file.

Shared by :mod:`tflite.convert`, :mod:`tflite.evaluate`, :mod:`tflite.benchmark` and
:mod:`tflite.qat`; it imports none of them.
"""

import os

import numpy as np


def load_model(name_or_path, *, weights=None, **kwargs):
    """Returns a Keras model from a registry name or a saved ``.keras`` file.

    Args:
        name_or_path: a name of ``ghostnet_keras.list_models()`` or the path of a
            ``.keras`` file.
        weights: for a registry name, passed to the builder (``None``, ``"imagenet"`` or a
            weights file); for a ``.keras`` file, an optional ``.weights.h5`` file to load.
        **kwargs: more builder arguments for a registry name, e.g. ``classes=10`` or
            ``input_shape=(224, 224, 3)``.
    """
    import keras

    import ghostnet_keras
    from ghostnet_keras import weights_file

    name = os.fspath(name_or_path)
    if name.endswith(".keras") or os.path.sep in name or os.path.isfile(name):
        if os.path.isdir(name):
            raise ValueError(
                f"{name} is a folder, not a .keras model file. Received: model={name!r}"
            )
        if not os.path.isfile(name):
            raise ValueError(f"The model file does not exist. Received: model={name!r}")
        if kwargs:
            raise ValueError(
                "Builder arguments only apply to a registry name, not to a saved model. "
                f"Received: {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}"
            )
        try:
            model = keras.saving.load_model(name)
        except Exception as err:  # Keras raises many types for a file that is not a model.
            raise ValueError(
                f"Could not load a Keras model from the file ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}). Received: model={name!r}"
            ) from err
        if weights is not None:
            if os.path.isdir(weights):
                raise ValueError(
                    f"{weights} is a folder, not a weights file. Received: weights={weights!r}"
                )
            if not os.path.isfile(weights):
                raise ValueError(
                    f"The `weights` file does not exist. Received: weights={weights!r}"
                )
            weights_file.load(model, weights)  # one error for a file that does not fit
        return model
    return ghostnet_keras.create_model(name, weights=weights, **kwargs)


def model_image_shape(model, image_size=None):
    """The ``(height, width, channels)`` the converted model takes.

    ``image_size`` (an int or a ``(height, width)`` pair) is only needed, and only allowed to
    differ from the model, when the model was built with an unknown spatial size.
    """
    shape = tuple(model.input_shape)
    if isinstance(model.input_shape, list) or len(shape) != 4:
        raise ValueError(
            "Only models with one image input (batch, height, width, channels) convert. "
            f"Received: model.input_shape={model.input_shape}"
        )
    height, width, channels = shape[1:]
    if image_size is not None:
        size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
        if (height is not None and height != size[0]) or (width is not None and width != size[1]):
            raise ValueError(
                f"`image_size` disagrees with the model's input size {height}x{width}. "
                f"Received: image_size={image_size}"
            )
        height, width = int(size[0]), int(size[1])
    if height is None or width is None:
        raise ValueError(
            "The model has no fixed input size: mobile exports need one. Pass `image_size` or "
            f"build the model with `input_shape`. Received: model.input_shape={shape}"
        )
    if channels is None:
        raise ValueError(f"The model's channel count is unknown. Received: input_shape={shape}")
    return int(height), int(width), int(channels)
