"""Shared fixtures: one local Spark session for the whole run and a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEASONREC_SALT", "test-salt")

from seasonrec.context import JobContext  # noqa: E402
from seasonrec.lake import Lake  # noqa: E402
from support import job_args, make_config  # noqa: E402


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


@pytest.fixture(scope="session")
def feature_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> JobContext:
    """conf/test.yaml's synthetic data run once through the real ingest + features jobs.

    Shared by the whole session: treat its bronze/silver/gold tables as read-only (write only your
    own output tables). Returns the features JobContext (config, spark, lake).
    """
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.features import jobs as features_jobs

    config = make_config(tmp_path_factory.mktemp("feature_lake"))
    ingest_jobs.run(JobContext.create(config, "ingest", spark), job_args(ingest_jobs))
    ctx = JobContext.create(config, "features", spark)
    features_jobs.run(ctx, job_args(features_jobs))
    return ctx
