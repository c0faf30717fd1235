"""The wheel a Databricks cluster installs never declares the runtime's own packages as hard requirements,
and `make setup` (scripts/bootstrap.sh) still installs the whole local stack through the extras."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a Databricks (ML) runtime provides: a cluster library must not pull its own copies over them.
RUNTIME_OWNED = {"pyspark", "pandas", "pyarrow", "numpy", "tensorflow", "tensorflow-cpu", "mlflow", "mlflow-skinny"}


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def requires_dist(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Requires-Dist lines of the wheel built from setup.py (built in a copy: no build/ in the repo)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(REPO / "setup.py", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(out), str(source)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = out.glob("seasonrec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _extras(requires: list[str]) -> dict[str | None, set[str]]:
    """{extra name (None: hard requirement): package names}."""
    out: dict[str | None, set[str]] = {}
    for line in requires:
        marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        out.setdefault(marker.group(1) if marker else None, set()).add(_name(line))
    return out


def test_wheel_declares_no_runtime_owned_package_as_a_hard_requirement(requires_dist: list[str]) -> None:
    extras = _extras(requires_dist)
    hard = extras.get(None, set())
    assert hard, requires_dist  # the parse saw the hard requirements
    assert not hard & RUNTIME_OWNED, f"hard requirements a Databricks runtime owns: {sorted(hard & RUNTIME_OWNED)}"
    assert {"pyspark", "pandas", "pyarrow", "numpy", "mlflow-skinny", "deltalake", "petastorm"} <= extras["local"]
    assert extras["cpu"] == {"tensorflow-cpu"} and extras["gpu"] == {"tensorflow"}
    assert "mlflow" in extras["serving"]


def test_make_setup_installs_every_declared_requirement_but_the_gpu_build(requires_dist: list[str]) -> None:
    """bootstrap.sh (`make setup`) installs the package with the extras that hold the local stack."""
    line = next(line for line in (REPO / "scripts" / "bootstrap.sh").read_text().splitlines()
                if "install -c constraints.txt -e" in line)
    installed = set(re.search(r'"\.\[([^\]]*)\]"', line).group(1).split(","))
    extras = _extras(requires_dist)
    assert {"local", "cpu", "dev", "serving"} <= installed and "gpu" not in installed
    pinned = {_name(row) for row in (REPO / "constraints.txt").read_text().splitlines()
              if row.strip() and not row.startswith("#")}
    wanted = set().union(*(names for extra, names in extras.items() if extra is None or extra in installed))
    assert wanted - {"pytest", "ruff"} <= pinned, sorted(wanted - pinned)  # the venv is the tested, pinned stack
    makefile = (REPO / "Makefile").read_text()
    assert "setup: ## " in makefile and "./scripts/bootstrap.sh" in makefile
