"""The committed lock (``requirements/lock.txt``, written by ``make lock``) read as pins, and compared
with what is installed.

``python -m tests.lockfile`` prints every installed package whose version is not the lock's and exits 1
when there is one; ``--report`` only prints (the Makefile's fresh-resolve leg, where newer versions are
the point).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
TOOLS_LOCK = ROOT / "requirements" / "tools.txt"
# Written by the Makefile into the virtualenv it installs: its RESOLVE, "lock", "fresh" or "lowest".
INSTALL_MARK = Path(sys.prefix) / "rulesvc-install"
PROJECT = "rulesvc"


@dataclass(frozen=True)
class Pin:
    """One ``name==version ; marker`` line of the lock with its ``--hash`` options."""

    name: str  # canonical (PEP 503)
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]
    line: int

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether this pin is installed on ``environment`` (default: the running interpreter)."""
        return self.marker is None or self.marker.evaluate(environment)


def read_pins(path: Path = LOCK) -> list[Pin]:
    """Every requirement of a hashed requirements file, in file order."""
    pins: list[Pin] = []
    logical, first_line = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not text and not logical:
            continue
        if not logical:
            first_line = number
        logical += " " + text.removesuffix("\\")
        if text.endswith("\\"):
            continue
        requirement_text, *options = logical.split(" --hash=")
        requirement = Requirement(requirement_text.strip())
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{path.name}:{first_line}: {requirement_text.strip()!r} is not pinned with ==")
        pins.append(Pin(canonicalize_name(requirement.name), specifiers[0].version, requirement.marker,
                        tuple(option.strip() for option in options), first_line))
        logical = ""
    return pins


def installed_versions() -> dict[str, str]:
    """Canonical name → version of every distribution importable here, this project excepted."""
    versions = {canonicalize_name(distribution.metadata["Name"]): distribution.version
                for distribution in metadata.distributions()}
    versions.pop(PROJECT, None)
    return versions


def differences(pins: list[Pin], installed: dict[str, str]) -> list[str]:
    """What is installed otherwise than the pins that apply here say, one line each."""
    wanted = {pin.name: pin.version for pin in pins if pin.applies()}
    lines = [f"{name} {installed[name] if name in installed else 'missing'} (lock {version})"
             for name, version in sorted(wanted.items()) if installed.get(name) != version]
    lines += [f"{name} {version} (not in the lock)" for name, version in sorted(installed.items()) if name not in wanted]
    return lines


def main(argv: list[str]) -> int:
    pins = read_pins(LOCK)
    found = differences(pins, installed_versions())
    for line in found:
        print(line)
    if not found:
        print(f"installed as locked: {sum(pin.applies() for pin in pins)} packages ({LOCK.relative_to(ROOT)})")
    return 1 if found and "--report" not in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
