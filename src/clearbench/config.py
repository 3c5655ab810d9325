"""Typed settings: the constrained types, the settings decorator and readable errors.

Every settings class (stage configs, methods, data and model sizes) is a
:func:`settings` dataclass: pydantic checks and coerces each field on construction (YAML's
``2e-3`` string becomes the number 0.002, ``"false"`` becomes False) and a mistake is a
:class:`ConfigError` whose lines each name the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import annotated_types
import pydantic
from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]

T = TypeVar("T")
NO_VALUE = object()


class Choices:
    """An after-validator: the value must be one of ``allowed``."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = tuple(allowed)

    def __str__(self) -> str:
        return f"one of {', '.join(self.allowed)}"

    def __call__(self, value: str) -> str:
        if value not in self.allowed:
            raise ValueError(str(self))
        return value


def one_of(allowed: Iterable[str]) -> AfterValidator:
    """Annotated metadata restricting a string to ``allowed``."""
    return AfterValidator(Choices(allowed))


@dataclasses.dataclass(frozen=True)
class Problem:
    """One mistake: the dotted key, the value given (if any) and what is allowed."""

    key: str
    allowed: str
    value: Any = NO_VALUE

    def under(self, prefix: str) -> Problem:
        return dataclasses.replace(self, key=".".join(p for p in (prefix, self.key) if p))

    def __str__(self) -> str:
        if self.value is not NO_VALUE:
            return f"{self.key} = {self.value!r}: {self.allowed}"
        return f"{self.key}: {self.allowed}" if self.key else self.allowed


class ConfigError(ValueError):
    """Every problem of some settings, one line each: ``WHERE: KEY = VALUE: ALLOWED``."""

    def __init__(self, where: str, problems: Sequence[Problem]) -> None:
        self.where = where
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{where}: {problem}" for problem in self.problems))


def settings(cls: type[T] | None = None, *, frozen: bool = False) -> Any:
    """Class decorator: a pydantic dataclass with unknown keys forbidden, whose construction
    errors are a :class:`ConfigError` (its own ``__post_init__`` errors pass unchanged)."""

    def wrap(cls: type[T]) -> type[T]:
        typed = pydantic.dataclasses.dataclass(cls, frozen=frozen,
                                               config=ConfigDict(extra="forbid"))
        init = typed.__init__

        @functools.wraps(init)
        def __init__(self: T, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as err:
                own = [e for e in err.errors() if e["type"] == "value_error" and not e["loc"]]
                if own:  # raised by __post_init__, which runs only once every field is valid
                    raise own[0]["ctx"]["error"] from None
                raise ConfigError(cls.__name__, problems(err, typed)) from None

        typed.__init__ = __init__  # type: ignore[method-assign]
        return typed

    return wrap if cls is None else wrap(cls)


def checked(kind: Any, value: Any, key: str = "") -> tuple[Any, list[Problem]]:
    """``value`` validated as ``kind`` (a settings class or a type), and the problems under
    ``key``: (the coerced value, []) or (None, problems)."""
    try:
        return pydantic.TypeAdapter(kind).validate_python(value), []
    except ValidationError as err:
        return None, [problem.under(key) for problem in problems(err, kind)]


def problems(error: ValidationError, root: Any) -> list[Problem]:
    """The problems of a pydantic ``error`` raised while validating as ``root``, each with
    the dotted key and what the field there allows."""
    found = []
    for detail in error.errors():
        kind, loc, value = detail["type"], detail["loc"], detail.get("input", NO_VALUE)
        key = ".".join(str(part) for part in loc)
        if kind == "value_error" and not loc and dataclasses.is_dataclass(root):  # own check
            found.append(Problem("", str(detail["ctx"]["error"])))
            continue
        parent, annotation = _field(root, loc)
        if kind in ("unexpected_keyword_argument", "extra_forbidden"):
            known = ", ".join(f.name for f in dataclasses.fields(parent)) if parent else ""
            found.append(Problem(key, f"unknown key; known: {known or 'none'}", value))
        elif kind in ("missing", "missing_argument"):
            found.append(Problem(key, f"required: {describe(annotation)}"))
        elif annotation is not None:
            found.append(Problem(key, describe(annotation), value))
        else:
            message = detail["msg"].removeprefix("Value error, ")
            found.append(Problem(key, message.removeprefix("Input should be "), value))
    return found


def _field(root: Any, loc: tuple[Any, ...]) -> tuple[type | None, Any]:
    """The dataclass holding the field at ``loc`` and the field's annotation (None where
    ``loc`` leads into a list or mapping)."""
    parent, annotation = None, root
    for part in loc:
        if not dataclasses.is_dataclass(annotation) or not isinstance(part, str):
            return parent, None
        parent = annotation
        info = getattr(parent, "__pydantic_fields__", {}).get(part)
        if info is None:
            return parent, None
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else (
            info.annotation)
    return parent, annotation


NOUNS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
         Path: "a path", tuple: "a list", list: "a list", dict: "a mapping"}
BOUNDS = {annotated_types.Gt: ">", annotated_types.Ge: "≥", annotated_types.Lt: "<",
          annotated_types.Le: "≤"}


def describe(annotation: Any) -> str:
    """What a type allows, in words: ``a number > 0``, ``one of a, b or null``, ..."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        noun, bounds = describe(base), []
        for item in _flat(metadata):
            if isinstance(getattr(item, "func", None), Choices):
                noun = str(item.func)
            if type(item) in BOUNDS:
                bounds.append(f"{BOUNDS[type(item)]} {_bound(item)}")
        return " ".join([noun, " and ".join(bounds)]) if bounds else noun
    if origin in (Union, types.UnionType):
        options = [describe(arg) for arg in get_args(annotation) if arg is not type(None)]
        null = type(None) in get_args(annotation)
        return " or ".join([*options, *(["null"] if null else [])])
    if dataclasses.is_dataclass(annotation):
        return "a mapping of settings"
    return NOUNS.get(origin or annotation, "a value of the right type")


def _flat(metadata: Iterable[Any]) -> Iterable[Any]:
    for item in metadata:
        yield from (_flat(item.metadata) if isinstance(item, FieldInfo) else (item,))


def _bound(item: Any) -> Any:
    bound = getattr(item, dataclasses.fields(item)[0].name)
    return int(bound) if float(bound).is_integer() else bound
