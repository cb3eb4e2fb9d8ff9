"""The committed lock pins every package the Makefile installs, for each supported Python, with hashes,
and the virtualenv the tests run in holds exactly those versions (SPEC §7.1, reproducible installs)."""

from __future__ import annotations

import configparser
from collections import defaultdict

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.lockfile import INSTALL_MARK, LOCK, ROOT, TOOLS_LOCK, differences, installed_versions, read_pins

# Linux x86_64 CPython of each supported version, as markers see it.
PLATFORMS = {
    version: {"python_version": version, "python_full_version": f"{version}.0", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
              "platform_machine": "x86_64", "os_name": "posix"}
    for version in ("3.11", "3.12", "3.13")
}


def _declared_requirements() -> list[Requirement]:
    """setup.cfg's install_requires and every extra the Makefile installs, and requirements/tools.in."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines()
    for extra in ("dev", "bench"):
        lines += config["options.extras_require"][extra].splitlines()
    lines += (ROOT / "requirements" / "tools.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#", 1)[0].strip()) for line in lines if line.split("#", 1)[0].strip()]


@pytest.mark.parametrize("version", PLATFORMS)
def test_the_lock_pins_each_package_once_with_hashes_for_every_supported_python(version):
    applying = defaultdict(list)
    for pin in read_pins(LOCK):
        assert pin.hashes and all(h.startswith("sha256:") for h in pin.hashes), f"lock.txt:{pin.line}: {pin.name} has no hash"
        if pin.applies(PLATFORMS[version]):
            applying[pin.name].append(pin.line)
    twice = {name: lines for name, lines in applying.items() if len(lines) > 1}
    assert not twice, f"pinned more than once on {version}: {twice}"
    assert {"durable-rules", "pyyaml", "flask", "pytest", "playwright", "zen-engine", "pip", "setuptools"} <= set(applying)


@pytest.mark.parametrize("version", PLATFORMS)
def test_every_declared_requirement_is_pinned_within_its_range(version):
    # a requirement added to setup.cfg without `make lock` fails here, and `pip check` in the Makefile
    pins = {pin.name: pin.version for pin in read_pins(LOCK) if pin.applies(PLATFORMS[version])}
    for requirement in _declared_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate(PLATFORMS[version]):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements/lock.txt: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"{requirement}: the lock pins {pins[name]}; run make lock"


def test_the_tools_lock_agrees_with_the_lock():
    pins = {(pin.name, pin.version, pin.hashes) for pin in read_pins(LOCK)}
    tools = read_pins(TOOLS_LOCK)
    assert {pin.name for pin in tools} >= {"pip", "setuptools", "wheel"}
    assert {(pin.name, pin.version, pin.hashes) for pin in tools} <= pins


def test_the_virtualenv_holds_exactly_the_locked_versions():
    mark = INSTALL_MARK.read_text().strip() if INSTALL_MARK.exists() else None
    if mark != "lock":
        pytest.skip("this virtualenv was not installed from the lock by make" if mark is None else
                    f"RESOLVE={mark}: this virtualenv holds the {'newest' if mark == 'fresh' else 'lowest'} versions "
                    "setup.cfg allows, not the lock's")
    assert differences(read_pins(LOCK), installed_versions()) == []
