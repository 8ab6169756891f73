"""The pipeline's configuration: one YAML file, validated with pydantic.

``load_config(path, overrides)`` reads the YAML file, applies ``"section.key=value"``
overrides (values read as YAML) and validates the result into a :class:`PipelineConfig`.
Every problem ends as one :class:`ConfigError` line naming the file (and line), the key and
what is allowed, e.g. ``run.yaml:12: detection.treshold: unknown key (did you mean
'threshold'? allowed: method, kernel_width, ...)``.

Values with units are written as strings, ``"0.02 deg"``, ``"10 s"``, ``"1 TeV"``, and
become `~astropy.units.Quantity` (unit checked: angle, duration or energy). Times are
ISO strings (``"2026-01-01T00:00:00"``), ``"MJD 60676.5"`` or a bare number (an MJD),
read in TT unless a scale is appended (``"2026-01-01T00:00:00 UTC"``; an unquoted YAML
timestamp ending in ``Z`` is UTC too); they become `~astropy.time.Time` in the TT scale,
the scale of the event files. ``model_dump(mode="json")`` and :func:`dump_yaml` give the
strings back, so a dumped configuration loads into the same one.
"""

from __future__ import annotations

import os
import textwrap
import typing
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ValidationError

from . import config_sections, config_types
from .config_errors import (
    _dotted,
    _error_problem,
    _model_at,
    _model_of,
    _short_repr,
    _unknown_key_problem,
)
from .config_sections import *  # noqa: F403 (re-exported: the section models)
from .config_sections import PipelineConfig
from .config_types import *  # noqa: F403 (re-exported: the value types and ConfigError)
from .config_types import ConfigError, _KeyProblem

__all__ = [
    *config_types.__all__,
    *config_sections.__all__,
    "dump_yaml",
    "load_config",
    "template_yaml",
    "validate_config",
]


# -- YAML with line numbers ---------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text, source):
    """``(data, node)`` of a YAML document; a syntax error is a ConfigError with its line."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", source=source) from None
    finally:
        loader.dispose()
    return data, node


def _line_of(node, path):
    """Line (1-based) of the deepest key of ``path`` found in the YAML node tree."""
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not match:
                break
            key_node, node = match[-1]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# -- overrides -------------------------------------------------------------------------------
def _split_override(text):
    """``"section.key=value"`` as ``(("section", "key"), value)``, value read as YAML."""
    source = f"--set {text}"
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError("expected section.key=value", source=source)
    dotted, raw = text.split("=", 1)
    path = tuple(part.strip() for part in dotted.strip().split("."))
    if not all(path):
        raise ConfigError(f"expected section.key=value, got key {dotted!r}", source=source)
    try:
        value = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid YAML value {raw!r}: {problem}", source=source) from None
    _check_override_path(path, source)
    return path, value


def _check_override_path(path, source):
    """Raise unless every part of ``path`` is a key of the section it is in."""
    model = PipelineConfig
    for depth, part in enumerate(path):
        if model is None:
            raise ConfigError(
                f"{_dotted(path[:depth])} is not a section", key=_dotted(path), source=source
            )
        if part not in model.model_fields:
            key = _dotted(path[: depth + 1])
            raise ConfigError(_unknown_key_problem(path[: depth + 1]), key=key, source=source)
        annotation = model.model_fields[part].annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_section else None


def _apply_override(data, path, value):
    """Set ``data[path[0]]...[path[-1]] = value`` (sections created as needed)."""
    for part in path[:-1]:
        section = data.get(part)
        if not isinstance(section, dict):
            section = data[part] = {}
        data = section
    data[path[-1]] = value


# -- loading ---------------------------------------------------------------------------------
def validate_config(data, source=None, overridden=None, node=None):
    """Validate a mapping into a :class:`PipelineConfig`; problems as one ConfigError line.

    Parameters
    ----------
    data : dict or None
        The sections (None: the defaults). A section given as null gets its defaults.
    source : str, optional
        Named in errors (the file name).
    overridden : dict, optional
        ``{path tuple: override text}``: errors under these keys name the override.
    node : yaml.Node, optional
        The YAML node tree of ``data``, for line numbers.

    Returns
    -------
    PipelineConfig
        The sections given, validated, and the defaults of the others.

    Raises
    ------
    ConfigError
        The first problem found (and how many more there are).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of sections ({', '.join(PipelineConfig.model_fields)}), "
            f"got {_short_repr(data)}",
            source=source,
        )
    data = {
        key: ({} if value is None and _model_at((key,)) else value) for key, value in data.items()
    }
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as error:
        raise _config_error(error, source, overridden or {}, node) from None


def _config_error(error, source, overridden, node):
    errors = error.errors()
    path, problem = _error_problem(errors[0])
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})"
    cause = (errors[0].get("ctx") or {}).get("error")
    # a cross-field problem concerns its whole section: any override within it is named
    scope = path[:-1] if isinstance(cause, _KeyProblem) else path
    for override_path, text in reversed(overridden.items()):
        if path[: len(override_path)] == override_path or override_path[: len(scope)] == scope:
            return ConfigError(problem, key=_dotted(path), source=f"--set {text}")
    line = _line_of(node, path) if node is not None else None
    return ConfigError(problem, key=_dotted(path), source=source, line=line)


def _read_text(path):
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", source=str(path)) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text ({error.reason})", source=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", source=str(path)) from None


def load_config(path=None, overrides=(), require_input=False):
    """Read, override and validate a pipeline configuration.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The YAML file; None: the defaults (:func:`template_yaml`).
    overrides : iterable of str
        ``"section.key=value"`` (or ``"backend=cuda"``), applied in order after the file;
        the value is read as YAML, so ``detection.threshold=4`` is a number and
        ``input.obs_ids=[33787, 33788]`` a list.
    require_input : bool
        Also require exactly one input source (``rtafast run``; the demo brings its own).

    Returns
    -------
    PipelineConfig
        The file's configuration (or the defaults) with the overrides applied, validated.

    Raises
    ------
    ConfigError
        One line naming the file (and line) or the override, the key and what is allowed:
        missing or unreadable file, YAML syntax error, duplicate key, unknown section or key,
        a value of the wrong type or unit, inconsistent values.
    """
    data, node, source = {}, None, None
    if path is not None:
        source = os.fspath(path)
        data, node = _parse_yaml(_read_text(path), source)
        if data is None:
            data = {}
    if isinstance(overrides, str):
        overrides = [overrides]
    overridden = {}
    for text in overrides:
        override_path, value = _split_override(text)
        if not isinstance(data, dict):
            break  # validate_config names the file's problem
        _apply_override(data, override_path, value)
        overridden[override_path] = text
    config = validate_config(data, source=source, overridden=overridden, node=node)
    if require_input:
        try:
            config.input.source  # noqa: B018 (raises when no input is given)
        except ConfigError as error:
            raise ConfigError(error.problem, key=error.key, source=source) from None
    return config


# -- writing ---------------------------------------------------------------------------------
_HEADER = """\
rtafast pipeline configuration (rtafast run CONFIG -o OUTDIR).
Values with units are strings: angles '0.02 deg', times '10 s', energies '1 TeV'.
Times: '2026-01-01T00:00:00' (read as TT), '2026-01-01T00:00:00 UTC', 'MJD 60676.5' (TT).
Override a key on the command line: --set section.key=value (the value is read as YAML)."""


def _yaml_value(value):
    """One value as inline YAML (``0.02 deg``, ``[jsonl, gcn]``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


def _allowed(annotation):
    """``"one of: a, b"`` for a Literal field (or a list of them), else ``""``."""
    if typing.get_origin(annotation) is Literal:
        return "one of: " + ", ".join(str(v) for v in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        choices = _allowed(typing.get_args(annotation)[0])
        return choices.replace("one of", "any of", 1)
    return ""


def _comment(text, indent):
    prefix = " " * indent + "# "
    return textwrap.fill(text, width=96, initial_indent=prefix, subsequent_indent=prefix)


def _key_lines(name, field, value, indent):
    """The commented ``key: value`` lines of one field."""
    notes = [field.description or "", _allowed(field.annotation)]
    text = "; ".join(note for note in notes if note)
    lines = [_comment(text, indent)] if text else []
    lines.append(f"{' ' * indent}{name}: {_yaml_value(value)}")
    return lines


def dump_yaml(config, comments=True):
    """A configuration as YAML that :func:`load_config` reads back into the same one.

    Parameters
    ----------
    config : PipelineConfig
    comments : bool
        Document every section and key (units, allowed values) in comments.

    Returns
    -------
    str
    """
    data = config.model_dump(mode="json")
    lines = [_comment(line, 0) for line in _HEADER.splitlines()]
    for name, field in PipelineConfig.model_fields.items():
        model = _model_of(field.annotation)
        lines.append("")
        if model is None:
            lines.extend(_key_lines(name, field, data[name], 0))
            continue
        lines.append(_comment(model.__doc__.strip().splitlines()[0], 0))
        lines.append(f"{name}:")
        for key, subfield in model.model_fields.items():
            lines.extend(_key_lines(key, subfield, data[name][key], 2))
    if not comments:
        lines = [line for line in lines if line and not line.lstrip().startswith("#")]
    return "\n".join(lines) + "\n"


def template_yaml():
    """The documented default configuration (``rtafast config --template``).

    Returns
    -------
    str
        YAML with every section and key and a comment on each (units, allowed values);
        :func:`load_config` reads it into the defaults.
    """
    return dump_yaml(PipelineConfig())
