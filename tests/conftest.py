"""Shared fixtures: one local Spark session for the whole run and a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEASONREC_SALT", "test-salt")

from seasonrec.config import SeasonrecConfig, load_config  # noqa: E402
from seasonrec.context import JobContext  # noqa: E402
from seasonrec.lake import Lake  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def make_config(lake_root: Path, *overrides: str) -> SeasonrecConfig:
    """The test config: conf/test.yaml with every path under `lake_root`."""
    paths = [f"paths.{key}={lake_root}/{key}" for key in
             ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    return load_config(REPO / "conf" / "test.yaml", [f"paths.lake_root={lake_root}/lake", *paths, *overrides])


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    from seasonrec.spark import get_spark

    session = get_spark(make_config(tmp_path_factory.mktemp("session")))
    yield session
    session.stop()


@pytest.fixture()
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture()
def tmp_lake(spark, tmp_path: Path) -> Lake:
    return Lake(spark, str(tmp_path / "lake"))


@pytest.fixture()
def job_context(spark, tmp_path: Path):
    """A JobContext on a fresh lake; call it with a job name and optional --set overrides."""

    def make(job: str, *overrides: str) -> JobContext:
        return JobContext.create(make_config(tmp_path, *overrides), job, spark)

    return make


def _job_args(module, *argv: str):
    """A job's argparse namespace with its defaults (plus `argv`), as the CLI would build it."""
    import argparse

    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="session")
def feature_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> JobContext:
    """conf/test.yaml's synthetic data run once through the real ingest + features jobs.

    Shared by the whole session: treat its bronze/silver/gold tables as read-only (write only your
    own output tables). Returns the features JobContext (config, spark, lake).
    """
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.features import jobs as features_jobs

    config = make_config(tmp_path_factory.mktemp("feature_lake"))
    ingest_jobs.run(JobContext.create(config, "ingest", spark), _job_args(ingest_jobs))
    ctx = JobContext.create(config, "features", spark)
    features_jobs.run(ctx, _job_args(features_jobs))
    return ctx
