"""Architecture registry: a stable id maps to a class, a state-dict detector and an hparam reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ..errors import DuplicateArchError, UnsupportedModelError

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture."""

    id: str
    cls: type[nn.Module]
    detect: Callable[[StateDict], bool]
    """True if a state dict without streamsr metadata looks like this arch."""
    infer: Callable[[StateDict], dict[str, int | float]]
    """Hyperparameters read off tensor shapes (foreign files only)."""
    describe: Callable[[nn.Module], dict[str, Any]] = field(default=lambda _module: {})
    """The calling contract of a built network (`ModelDescriptor` fields: precisions, size rules,
    tiling and overlap, activation channels, per-device set-up); fields left out take their defaults."""


class ArchRegistry:
    """Explicit, strict registry: a duplicate id is an error."""

    def __init__(self) -> None:
        self._by_id: dict[str, ArchSpec] = {}

    def add(self, spec: ArchSpec) -> None:
        if spec.id in self._by_id:
            raise DuplicateArchError(f"architecture {spec.id!r} is already registered")
        self._by_id[spec.id] = spec

    def __getitem__(self, arch_id: str) -> ArchSpec:
        try:
            return self._by_id[arch_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise UnsupportedModelError(f"unknown architecture {arch_id!r} (known: {known})") from None

    def __contains__(self, arch_id: object) -> bool:
        return arch_id in self._by_id

    def __iter__(self) -> Iterator[ArchSpec]:
        return iter(self._by_id.values())

    def detect(self, state: StateDict) -> ArchSpec:
        """The registered arch whose detector accepts `state`."""
        for spec in self._by_id.values():
            if spec.detect(state):
                return spec
        raise UnsupportedModelError("the weight file matches no known architecture")


REGISTRY = ArchRegistry()


def register_arch(
    arch_id: str,
    cls: type[nn.Module],
    *,
    detect: Callable[[StateDict], bool],
    infer: Callable[[StateDict], dict[str, int | float]],
    describe: Callable[[nn.Module], dict[str, Any]] | None = None,
) -> type[nn.Module]:
    """Register `cls` under `arch_id`; returns `cls` so it can be used after a class statement."""
    REGISTRY.add(ArchSpec(arch_id, cls, detect, infer, describe or (lambda _module: {})))
    return cls
