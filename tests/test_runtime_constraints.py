"""The constraints file for installing the wheel on the bundle's Databricks runtime pins every package
the runtime owns, names the runtime the bundle runs, and the wheel's hard requirements accept it (else
a cluster install would fail, or replace the runtime's copies without the file)."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.version import Version

from test_packaging import REPO, RUNTIME_OWNED, requires_dist  # noqa: F401 - the wheel-building fixture

CONSTRAINTS = REPO / "conf" / "databricks-15.4-lts-ml-constraints.txt"


def _pins() -> dict[str, Version]:
    """{package name: pinned version} of the constraints file (every line must be ``name==version``)."""
    rows = [row.split("#", 1)[0].strip() for row in CONSTRAINTS.read_text().splitlines()]
    rows = [row for row in rows if row]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", row) for row in rows), rows
    names = [row.split("==")[0].lower().replace("_", "-") for row in rows]
    assert len(set(names)) == len(names), names
    return {name: Version(row.split("==")[1]) for name, row in zip(names, rows, strict=True)}


def test_every_runtime_owned_package_is_pinned_once() -> None:
    pins = _pins()
    assert RUNTIME_OWNED - {"tensorflow-cpu"} <= set(pins), sorted(RUNTIME_OWNED - set(pins))
    assert pins["pyspark"] == Version("3.5.0") and pins["pandas"] == Version("1.5.3")  # what 15.4 LTS documents


def test_the_wheels_hard_requirements_accept_the_runtime_versions(requires_dist: list[str]) -> None:  # noqa: F811
    pins = _pins()
    hard = [Requirement(line) for line in requires_dist if not re.search(r"extra\s*==", line)]
    assert hard, requires_dist
    refused = [f"{req} (runtime: {pins[req.name.lower()]})" for req in hard
               if req.name.lower() in pins and not req.specifier.contains(pins[req.name.lower()], prereleases=True)]
    assert not refused, refused
    python = re.search(r'python_requires="([^"]+)"', (REPO / "setup.py").read_text())
    assert python and Requirement(f"python{python[1]}").specifier.contains("3.11.0")  # 15.x runtimes: Python 3.11


def test_the_constraints_are_for_the_runtime_the_bundle_runs() -> None:
    bundle = (REPO / "databricks.yml").read_text()
    runtime = re.search(r"spark_version:\n(?:\s+description:.*\n)?\s+default:\s*(\S+)", bundle)
    assert runtime and runtime[1].startswith("15.4.") and "-ml-" in runtime[1], runtime
    assert runtime[1] in CONSTRAINTS.read_text()
