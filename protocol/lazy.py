"""Package exports that load on first use (PEP 562), so that importing a light part of a package
does not pay for its heavy parts (torch): used by ``protocol`` and ``sim``.

>>> getattr_, dir_ = lazy_exports("demo", {"Path": "pathlib"}, {})
>>> getattr_("Path").__name__, dir_()
('Path', ['Path'])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, home_of: Mapping[str, str], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` for names living in other modules.

    ``home_of`` maps each exported name to the module defining it; a loaded name is cached in
    ``namespace`` (the package's ``globals()``), so each costs one lookup.
    """

    def getattr_(name: str) -> object:
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *home_of})

    return getattr_, dir_
