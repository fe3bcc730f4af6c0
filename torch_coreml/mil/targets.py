"""Deployment targets: each OS release fixes a Core ML specification version and a MIL opset.

iOS, macOS, tvOS, watchOS and visionOS releases of one year share a target, so a target is named by its
iOS release and every spelling maps onto it.
"""

from __future__ import annotations

import enum
import re


class Target(enum.IntEnum):
    # value = Core ML specificationVersion
    iOS15 = 6
    iOS16 = 7
    iOS17 = 8
    iOS18 = 9

    @property
    def spec_version(self) -> int:
        return int(self)

    @property
    def opset(self) -> str:
        # Opset strings run one behind the spec version: spec 6 is "CoreML5".
        return f"CoreML{int(self) - 1}"

    @property
    def ios(self) -> int:
        return int(self) + 9

    def __str__(self) -> str:
        return self.name


# OS version → iOS-equivalent major version
_OFFSETS = {"ios": 0, "macos": 3, "tvos": 0, "watchos": 7}


def parse_target(value: "Target | str | int") -> Target:
    """Accepts a Target, "iOS17", "macOS14", "tvOS16", "watchOS10", or a spec version number."""
    if isinstance(value, Target):
        return value
    if isinstance(value, int):
        return Target(value)
    m = re.fullmatch(r"\s*(ios|macos|tvos|watchos)\s*(\d+)\s*", str(value).lower())
    if m:
        ios = int(m.group(2)) + _OFFSETS[m.group(1)]
        for t in Target:
            if t.ios == ios:
                return t
    known = ", ".join(t.name for t in Target)
    raise ValueError(f"unknown deployment target {value!r}; expected one of {known} "
                     "(or the macOS/tvOS/watchOS release of the same year)")


def target_for_opset(opset: str) -> Target:
    for t in Target:
        if t.opset == opset:
            return t
    raise ValueError(f"unknown MIL opset {opset!r}; known: {[t.opset for t in Target]}")
