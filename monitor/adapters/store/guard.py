"""`guarded`: a store method whose database faults become StoreErrors (both backends)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

__all__ = ["guarded"]


class _Faulting(Protocol):
    def faults(self) -> contextlib.AbstractContextManager[None]: ...


_S = TypeVar("_S", bound=_Faulting)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Run `method` inside its store's `faults()`, which turns the driver's errors for a
    down, full, read-only or damaged database into StoreErrors."""

    @functools.wraps(method)
    def call(store: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with store.faults():
            return method(store, *args, **kwargs)

    return call
