"""One registry per concept (losses, architectures, data sets, recipes, ...), filled by a decorator.

    NETS = Registry("architecture")

    @NETS.register("dcgan")
    def build_dcgan(...): ...

    NETS.get("dcgn")   # ConfigError: unknown architecture 'dcgn'; valid: dcgan, mlp, resnet

An entry with options of its own registers their table class with it (``register("mlp",
options=MLPOptions)``): the run reads them from a TOML table named after the entry (``[mlp]``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._options: dict[str, type] = {}

    def register(self, name: str, options: type | None = None) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            if options is not None:
                self._options[name] = options
            return obj

        return add

    def options(self, name: str) -> type | None:
        """The option table class registered with ``name`` (None: it takes no options)."""
        self.get(name)
        return self._options.get(name)

    def with_options(self) -> dict[str, type]:
        """name -> option table class, for the entries that have options."""
        return dict(sorted(self._options.items()))

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} '{name}'; valid: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in the order they were registered."""
        return list(self._items.items())

    @contextmanager
    def temporary(self) -> Iterator["Registry[T]"]:
        """Entries registered inside ``with registry.temporary():`` are gone when the block ends (tests)."""
        items, options = dict(self._items), dict(self._options)
        try:
            yield self
        finally:
            self._items, self._options = items, options

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
