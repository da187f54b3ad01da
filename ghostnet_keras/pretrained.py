"""ImageNet weights: which models have them, and loading them.

``PRETRAINED`` maps a registry name to where its published weights come from.
"""

PRETRAINED = {}


def check_available(model_name):
    """Raises a ``ValueError`` unless ``model_name`` has published ImageNet weights."""
    if model_name not in PRETRAINED:
        have = ", ".join(sorted(PRETRAINED)) or "none yet"
        raise ValueError(
            f"No ImageNet weights are published for {model_name!r}; models that have them: "
            f"{have}. Pass `weights=None` or the path to a converted `.weights.h5` file. "
            "Received: weights='imagenet'"
        )


def load_imagenet_weights(model, model_name, include_top=True):
    """Loads the published ImageNet weights of ``model_name`` into ``model``."""
    check_available(model_name)
    raise NotImplementedError  # pragma: no cover - filled with the first entry of PRETRAINED
