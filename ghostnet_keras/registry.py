"""The model registry that every command line tool builds models from.

Each registered model has a builder ``fn(**kwargs) -> keras.Model`` and a row of
:mod:`ghostnet_keras.catalog` (its module, public name, converters and published weights),
which registering checks the builder against.
"""

import difflib
import fnmatch
import importlib
import inspect

from ghostnet_keras import catalog

_MODELS = {}

# The modules whose import registers models, from the catalogue. `import ghostnet_keras`
# loads them only when used, so the registry loads them (by name, so that they, which import
# the registry, stay above it) before its first look-up.
MODEL_MODULES = catalog.model_modules()
_loaded = False


def _models():
    """``_MODELS`` after every module of ``MODEL_MODULES`` is imported."""
    global _loaded
    if not _loaded:
        for module in MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True
    return _MODELS


def register_model(name):
    """Decorator: registers a builder ``fn(**kwargs) -> keras.Model`` under ``name``.

    ``name`` (the registry name, e.g. ``"ghostnet_100"``) must have a row in
    :data:`ghostnet_keras.catalog.MODELS` that names the builder's module and its name;
    the row's weights entry is the model's (:func:`get_pretrained`).
    """

    def wrap(fn):
        if name in _MODELS:
            raise ValueError(f"A model is already registered as {name!r}. Received: name={name!r}")
        row = catalog.MODELS.get(name)
        if row is None:
            raise ValueError(
                "A model is registered without a row in ghostnet_keras/catalog.py's MODELS "
                f"(its module, public name, converters and weights). Received: name={name!r}"
            )
        where = (fn.__module__, fn.__name__)
        if where != (f"ghostnet_keras.{row.module}", row.public):
            raise ValueError(
                f"The catalogue names the builder of {name!r} ghostnet_keras.{row.module}."
                f"{row.public}; the one registered is {'.'.join(where)}. Received: name={name!r}"
            )
        _MODELS[name] = fn
        return fn

    return wrap


def list_models(pattern=None):
    """Returns the sorted registry names; with ``pattern``, those matching it.

    A pattern with shell wildcards (``*?[``) must match the whole name, as in
    ``list_models("ghostnet_*")``; any other pattern is a substring, as in
    ``list_models("regnet")``.
    """
    models = _models()
    if pattern is None:
        return sorted(models)
    if any(c in pattern for c in "*?["):
        return sorted(fnmatch.filter(models, pattern))
    return sorted(n for n in models if pattern in n)


def get_builder(name):
    """Returns the builder registered as ``name``; ``ValueError`` with close matches if none."""
    if name not in _models():
        close = difflib.get_close_matches(str(name), _MODELS, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model.{hint} `ghostnet_keras.list_models()` lists all "
            f"{len(_MODELS)} models. Received: name={name!r}"
        )
    return _MODELS[name]


def get_pretrained(name):
    """The catalogue's weights of ``name`` (an entry, or ``{tag: entry}``), or ``None``.

    Raises ``ValueError`` (with close matches) for a name that is not registered.
    """
    get_builder(name)
    return catalog.MODELS[name].weights


def create_model(name, **kwargs):
    """Builds the registered model ``name``, passing ``kwargs`` to its builder.

    An argument the builder does not take raises a ``ValueError`` that names it and
    lists the accepted ones.

    Example:
        model = ghostnet_keras.create_model("ghostnet_100", classes=10, weights=None)
    """
    builder = get_builder(name)
    accepted = inspect.signature(builder).parameters
    unknown = sorted(key for key in kwargs if key not in accepted)
    if unknown:
        raise ValueError(
            f"Model {name!r} takes no argument {', '.join(map(repr, unknown))}; it takes: "
            f"{', '.join(accepted)}. Received: "
            + ", ".join(f"{key}={kwargs[key]!r}" for key in unknown)
        )
    return builder(**kwargs)
