"""The model registry that every command line tool builds models from."""

import difflib
import fnmatch

_MODELS = {}


def register_model(name):
    """Decorator: registers a builder ``fn(**kwargs) -> keras.Model`` under ``name``."""

    def wrap(fn):
        if name in _MODELS:
            raise ValueError(f"A model is already registered as {name!r}. Received: name={name!r}")
        _MODELS[name] = fn
        return fn

    return wrap


def list_models(pattern=None):
    """Returns the sorted registry names; with ``pattern``, those matching it.

    A pattern with shell wildcards (``*?[``) must match the whole name, as in
    ``list_models("ghostnet_*")``; any other pattern is a substring, as in
    ``list_models("regnet")``.
    """
    if pattern is None:
        return sorted(_MODELS)
    if any(c in pattern for c in "*?["):
        return sorted(fnmatch.filter(_MODELS, pattern))
    return sorted(n for n in _MODELS if pattern in n)


def get_builder(name):
    """Returns the builder registered as ``name``; ``ValueError`` with close matches if none."""
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), _MODELS, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model.{hint} `ghostnet_keras.list_models()` lists all "
            f"{len(_MODELS)} models. Received: name={name!r}"
        )
    return _MODELS[name]


def create_model(name, **kwargs):
    """Builds the registered model ``name``, passing ``kwargs`` to its builder.

    Example:
        model = ghostnet_keras.create_model("ghostnet_100", classes=10, weights=None)
    """
    return get_builder(name)(**kwargs)
