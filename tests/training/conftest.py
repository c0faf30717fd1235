"""Training fixtures: train contexts on the shared `feature_lake` (gold tables from conf/test.yaml data)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def training_context(spark, lake_root, work_dir, *overrides: str):
    """A `train` JobContext on `lake_root` with checkpoints/models/MLflow/cache under `work_dir`."""
    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.lake import Lake

    paths = [f"paths.{key}={work_dir}/{key}" for key in
             ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    config = load_config(REPO / "conf" / "test.yaml", [f"paths.lake_root={lake_root}", *paths, *overrides])
    return JobContext(config=config, spark=spark, lake=Lake(spark, str(lake_root)), job="train")


@pytest.fixture(scope="module")
def train_context(spark, feature_lake, tmp_path_factory):
    """`make(name, *overrides)`: a train context on the feature lake with its own model/checkpoint dirs."""

    def make(name: str, *overrides: str):
        return training_context(spark, feature_lake.lake.root, tmp_path_factory.mktemp(name), *overrides)

    return make
