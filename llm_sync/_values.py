"""The decorator that turns a class into an immutable value (a frozen dataclass)."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    # Only type checkers need it; typing_extensions is not a runtime dependency.
    def dataclass_transform(**_kw: Any) -> Any:
        return lambda f: f


_T = TypeVar("_T", bound=type)


@overload
@dataclass_transform(frozen_default=True)
def value(cls: _T) -> _T: ...
@overload
@dataclass_transform(frozen_default=True)
def value(*, repr: bool = True, eq: bool = True) -> Callable[[_T], _T]: ...


def value(cls: Any = None, *, repr: bool = True, eq: bool = True) -> Any:
    """Make ``cls`` a frozen dataclass with ``__match_args__`` on every Python.

    Python 3.10+ generates ``__match_args__`` itself; 3.9 does not, and setting it
    there keeps the attribute (and therefore introspection) the same everywhere.
    """

    def wrap(c: _T) -> _T:
        out: Any = dataclasses.dataclass(frozen=True, repr=repr, eq=eq)(c)
        if sys.version_info < (3, 10) and "__match_args__" not in c.__dict__:
            names = tuple(f.name for f in dataclasses.fields(out) if f.init)
            out.__match_args__ = names  # type: ignore[attr-defined]
        return out  # type: ignore[no-any-return]

    return wrap if cls is None else wrap(cls)
