"""Pydantic validation errors of the pipeline configuration as one-line problems.

The helpers find the section model that a pydantic location points into, write the location
as a dotted key (``detection.exclusion[0].radius``) and turn one error into a problem that says
what is allowed: the close match and allowed keys of an unknown key, the required keys of a
missing one, the unit or range of a bad value. :mod:`rtafast.pipeline.config` builds its
:class:`~rtafast.pipeline.config.ConfigError` lines (and its template) from them.
"""

from __future__ import annotations

import difflib
import typing

from pydantic import BaseModel

from .config_sections import PipelineConfig
from .config_types import _KeyProblem

__all__ = []


def _model_of(annotation):
    """The model class inside ``annotation`` (``X``, ``list[X]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        model = _model_of(argument)
        if model is not None:
            return model
    return None


def _model_at(path):
    """The model class that ``path`` (a pydantic loc) points into, or None."""
    model = PipelineConfig
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _model_of(field.annotation)
    return model


def _dotted(path):
    """``("detection", "exclusion", 0, "radius")`` as ``"detection.exclusion[0].radius"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown_key_problem(path):
    """``unknown key (did you mean 'x'? allowed: ...)`` for the last key of ``path``."""
    model = _model_at(path[:-1])
    allowed = list(model.model_fields) if model is not None else []
    kind = "section" if len(path) == 1 else "key"
    hint = ""
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    if close:
        hint = f"did you mean {close[0]!r}? "
    return f"unknown {kind} ({hint}allowed: {', '.join(allowed)})"


def _error_problem(error):
    """One pydantic error (a dict of ``ValidationError.errors()``) as ``(path, problem)``."""
    path = tuple(error["loc"])
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _KeyProblem):
        return path + (cause.key,), cause.problem
    if kind == "extra_forbidden":
        return path, _unknown_key_problem(path)
    if kind == "missing":
        model = _model_at(path[:-1])
        required = [name for name, f in model.model_fields.items() if f.is_required()]
        return path, f"missing (required: {', '.join(required)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        model = _model_at(path)
        keys = f" ({', '.join(model.model_fields)})" if model is not None else ""
        return path, f"expected a mapping of keys{keys}, got {_short_repr(error['input'])}"
    if kind in ("value_error", "assertion_error") and cause is not None:
        return path, str(cause)
    message = error["msg"].split(", unable to parse")[0]
    message = message[0].lower() + message[1:]
    return path, f"{message}, got {_short_repr(error['input'])}"
