"""Building blocks shared by every declaration model: the base class, durations and
import paths.

Declarations are pure data: immutable pydantic models that load from Python, YAML or
JSON and dump back to the same form. Nothing here performs I/O beyond importing the
objects an import path names.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic._internal._model_construction import ModelMetaclass

from .exceptions import DeclarationError, Problem

Loc = tuple[str | int, ...]

__all__ = [
    "CrossFieldProblems",
    "Declaration",
    "ImportedCallable",
    "ImportedModel",
    "Loc",
    "PositiveDuration",
    "declaration_problems",
    "enum_text",
    "field_of",
    "format_duration",
    "import_object",
    "import_path_of",
    "Name",
    "parse_duration",
    "problems_from_validation_error",
]

T = TypeVar("T")

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


def _check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a name: start with a letter and use only letters, digits, "
            "'_', '-' and '.'"
        )
    return value


Name = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_check_name)]
"""A declared name (workflow, source, action, metric): ``crm.lead``, ``send_email``."""


class CrossFieldProblems(ValueError):
    """Raised inside validation to report several problems, each at its own location."""

    def __init__(self, items: Iterable[tuple[Loc, str]]) -> None:
        self.items = tuple(items)
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.items))


class _DeclarationMeta(ModelMetaclass):
    # Construction in Python goes through the metaclass; nested validation inside
    # pydantic-core does not, so only the outermost call turns errors into our own.
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            raise DeclarationError(
                declaration_problems(cast("type[Declaration]", cls), error, kwargs),
                summary=f"invalid {cls.__name__} declaration",
            ) from None


class Declaration(BaseModel, metaclass=_DeclarationMeta):
    """Base class of every declaration model: immutable, unknown keys rejected.

    Constructing a declaration with invalid data raises
    `ada_governance.DeclarationError` listing every problem, not pydantic's
    ``ValidationError``.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
    )

    @model_validator(mode="after")
    def _run_cross_field_checks(self) -> Any:
        found = list(self._cross_field_problems())
        if found:
            raise CrossFieldProblems(found)
        return self

    def _cross_field_problems(self) -> Iterable[tuple[Loc, str]]:
        """Yield ``(location, message)`` for each rule across fields this model breaks."""
        return ()

    @classmethod
    def _rules_on_raw_data(cls, data: Any) -> Iterable[tuple[Loc, str]]:
        """Cross-field rules that can still be checked when some fields are invalid.

        Called with the raw input after field validation failed, so one pass reports
        both kinds of problem. Models whose rules can read raw data override it.
        """
        return ()


def field_of(data: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from raw data (a mapping) or a validated model alike."""
    if isinstance(data, Mapping):
        return data.get(key, default)
    return getattr(data, key, default)


def enum_text(value: Any) -> Any:
    """The text of an enum member, or the value unchanged: raw and validated data alike."""
    return value.value if isinstance(value, Enum) else value


# --- durations -----------------------------------------------------------------------

_UNITS: dict[str, timedelta] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|ms|us|m|s)")


def parse_duration(value: Any) -> Any:
    """Parse a duration written as ``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"`` or seconds.

    Args:
        value: A string, a number of seconds, or a ``timedelta``.

    Returns:
        A ``timedelta``; any other input is returned unchanged for pydantic to reject.

    Raises:
        ValueError: The string is not a duration, or the duration is not positive.
    """
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '30s', '15m', '1h30m' or '7d'")
    if isinstance(value, (int, float)):
        try:
            value = timedelta(seconds=value)
        except (OverflowError, ValueError):
            raise ValueError(f"{value!r} seconds is not a usable duration") from None
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        total = timedelta()
        position = 0
        try:
            for match in _DURATION_PART.finditer(text):
                if match.start() != position:
                    break
                total += float(match.group(1)) * _UNITS[match.group(2)]
                position = match.end()
        except OverflowError:
            raise ValueError(f"{value!r} is too long a duration") from None
        if not text or position != len(text):
            raise ValueError(
                f"{value!r} is not a duration; write it like '30s', '15m', '1h30m' or '7d'"
            )
        value = total
    if isinstance(value, timedelta) and value <= timedelta():
        raise ValueError("must be positive")
    return value


def format_duration(value: timedelta) -> str:
    """Write a duration in the compact form `parse_duration` reads, exactly.

    Args:
        value: A positive duration.

    Returns:
        A string such as ``"1h30m"`` that parses back to the same ``timedelta``.
    """
    remaining = value
    parts = []
    for unit in ("d", "h", "m", "s", "us"):
        count, remaining = divmod(remaining, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A strictly positive ``timedelta``, written in files as ``"15m"``, ``"1h30m"``, ``"7d"``."""


# --- import paths --------------------------------------------------------------------


def import_object(path: str) -> Any:
    """Import the object an import path such as ``"package.module:Name"`` names.

    Args:
        path: ``module:attribute``, where the attribute may be dotted (``mod:Class.method``).

    Returns:
        The imported object.

    Raises:
        ValueError: The path is malformed or cannot be imported; the message says why.
    """
    module_name, sep, attribute = path.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import path; write it as 'package.module:Name'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure is the user's to fix
        raise ValueError(
            f"cannot import {path!r}: {type(error).__name__}: {error}; "
            "check the module is installed and on sys.path"
        ) from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"cannot import {path!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return target


def import_path_of(obj: Any) -> str:
    """Return the import path that names ``obj``, for writing it to a file.

    Args:
        obj: A module-level class or function.

    Returns:
        ``"module:qualname"``.

    Raises:
        ValueError: The object cannot be named by an import path (a lambda, a local
            function, or a name that does not import back to the same object).
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(
            f"{obj!r} has no import path; declare it at module level to write it to a file"
        )
    path = f"{module}:{qualname}"
    try:
        resolved = import_object(path)
    except ValueError:
        resolved = None
    if resolved is not obj:
        raise ValueError(f"{obj!r} does not import back from {path!r}; it cannot be written")
    return path


def _resolve(value: Any) -> Any:
    return import_object(value) if isinstance(value, str) else value


def _named(original: Any, value: Any) -> str:
    return f"{original!r} names {value!r}, which" if isinstance(original, str) else f"{value!r}"


def _require_callable(value: Any) -> Any:
    resolved = _resolve(value)
    if not callable(resolved):
        raise ValueError(f"{_named(value, resolved)} is not callable")
    return resolved


def _require_model(value: Any) -> Any:
    resolved = _resolve(value)
    if not (isinstance(resolved, type) and issubclass(resolved, BaseModel)):
        raise ValueError(f"{_named(value, resolved)} is not a pydantic model class")
    return resolved


ImportedCallable = Annotated[
    Callable[..., Any],
    BeforeValidator(_require_callable),
    PlainSerializer(import_path_of, return_type=str, when_used="json"),
]
"""A callable, given directly in Python or as an import path ``"pkg.module:name"`` in files."""

ImportedModel = Annotated[
    type[BaseModel],
    BeforeValidator(_require_model),
    PlainSerializer(import_path_of, return_type=str, when_used="json"),
]
"""A pydantic model class, given directly or as an import path ``"pkg.module:Model"``."""


# --- turning pydantic's errors into problems -----------------------------------------

_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


def clean_loc(loc: Sequence[str | int], data: Any) -> tuple[str | int, ...]:
    """Drop the parts of a pydantic error location that are not in the data.

    Pydantic adds union tags (``budget`` in ``stop_rules.0.budget.limit``) to locations;
    walking the data the user wrote keeps only the keys and indices they can find.

    Args:
        loc: The location pydantic reported.
        data: The data that was validated.

    Returns:
        The location as the user wrote it.
    """
    cleaned: list[str | int] = []
    current: Any = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, Mapping):
            if part in current:
                cleaned.append(part)
                current = current[part]
            elif last:  # a missing key: name it
                cleaned.append(part)
            continue
        if isinstance(current, BaseModel):
            if isinstance(part, str) and part in type(current).model_fields:
                cleaned.append(part)
                current = getattr(current, part)
            continue
        if isinstance(current, Sequence) and not isinstance(current, str):
            if isinstance(part, int) and 0 <= part < len(current):
                cleaned.append(part)
                current = current[part]
            continue
        # A leaf: whatever pydantic adds below it (union member names) is not the user's.
        break
    return tuple(cleaned)


def problems_from_validation_error(error: ValidationError, data: Any) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into problems a person can act on.

    Args:
        error: The error pydantic raised.
        data: The data that was validated, to name locations as the user wrote them.

    Returns:
        One problem per error, in pydantic's order.
    """
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldProblems):
            base = clean_loc(item["loc"], data)
            problems.extend(Problem(base + loc, message) for loc, message in cause.items)
            continue
        message = str(item["msg"])
        for prefix in _MESSAGE_PREFIXES:
            message = message.removeprefix(prefix)
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown field; check the spelling against the reference"
        elif kind == "missing":
            message = "required"
        problems.append(Problem(clean_loc(item["loc"], data), _lower_first(message)))
    return problems


def declaration_problems(
    cls: type[Declaration], error: ValidationError, data: Any
) -> list[Problem]:
    """Every problem with ``data`` as a ``cls`` declaration: field errors, and the rules
    across fields that can still be checked when fields failed.

    Args:
        cls: The declaration model that was validated.
        error: What pydantic raised.
        data: The data that was validated.

    Returns:
        The problems, each reported once.
    """
    problems = problems_from_validation_error(error, data)
    whole_model_checked = any(
        not item["loc"] and isinstance(item.get("ctx", {}).get("error"), CrossFieldProblems)
        for item in error.errors(include_url=False)
    )
    if not whole_model_checked:
        problems.extend(Problem(loc, message) for loc, message in cls._rules_on_raw_data(data))
    return problems
