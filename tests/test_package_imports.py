"""Each package of the service imports on its own, in a fresh interpreter, whatever was imported before.

A cycle between packages shows only when the first import enters it from one side: ``import notifier.web``
alone used to fail half-way (the pages imported the API's keys, whose package imported the app, which
imported the pages).
"""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

import pytest

import channels
import notifier


def packages() -> list[str]:
    found = []
    for root in (notifier, channels):
        found.append(root.__name__)
        for entry in files(root).iterdir():
            if entry.is_dir() and entry.joinpath("__init__.py").is_file():
                found.append(f"{root.__name__}.{entry.name}")
    return sorted(found)


def test_the_packages_are_found() -> None:
    assert {"notifier.web", "notifier.api", "notifier.console", "notifier.engine", "notifier.store"} <= set(packages())


@pytest.mark.parametrize("package", packages())
def test_a_package_imports_alone(package: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
