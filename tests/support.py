"""Helpers shared by test modules (importable as `support`; conftest files are not importable by name)."""

from __future__ import annotations

from pathlib import Path

from seasonrec.cli import job_args
from seasonrec.config import SeasonrecConfig, load_config

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "job_args", "make_config"]


def make_config(lake_root: Path, *overrides: str) -> SeasonrecConfig:
    """The test config: conf/test.yaml with every path under `lake_root`."""
    paths = [f"paths.{key}={lake_root}/{key}" for key in
             ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    return load_config(REPO / "conf" / "test.yaml", [f"paths.lake_root={lake_root}/lake", *paths, *overrides])
