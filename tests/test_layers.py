"""Stage packages import downward only (DEVELOPERS.md): a stage never imports a stage above it."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "seasonrec"
# Lower number = lower floor; stages on one floor never import each other (forecasting and evaluation on
# one floor; streaming, which needs only data and features, beside training; serving, the registered
# model and its server, on top).
FLOOR = {"core": 0, "data": 1, "features": 2, "training": 3, "streaming": 3, "scoring": 4, "forecasting": 5,
         "evaluation": 5, "serving": 6}


def _imported_stages(path: Path) -> set[str]:
    stages = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "seasonrec" and len(parts) > 1 and parts[1] in FLOOR:
                stages.add(parts[1])
    return stages


def test_stages_import_downward_only() -> None:
    upward = []
    for stage, floor in FLOOR.items():
        for path in sorted((LIB / stage).glob("*.py")):
            for other in _imported_stages(path) - {stage}:
                if FLOOR[other] >= floor:
                    upward.append(f"{path.relative_to(LIB)} imports seasonrec.{other}")
    assert not upward, upward
    assert _imported_stages(LIB / "scoring" / "engine.py") >= {"core", "features"}  # the check sees imports


def test_benchmark_and_smoke_code_stays_out_of_the_library() -> None:
    modules = sorted(LIB.rglob("*.py"))
    offenders = [str(p.relative_to(LIB)) for p in modules
                 if p.stem in {"smoke", "bench"} or p.stem.startswith("bench_")]
    assert not offenders, f"move to bench/ or tests/: {offenders}"
    assert len(modules) > 50  # the check walks the whole package
