"""One MLflow store rule for every job: local SQLite under paths.mlflow_dir, Databricks paths and UC."""

from __future__ import annotations

import pytest

from seasonrec import tracking
from seasonrec.config import ConfigError, load_config


def test_local_store_is_sqlite_under_the_mlflow_dir(tmp_path) -> None:
    config = load_config("conf/test.yaml", [f"paths.mlflow_dir={tmp_path}/mlflow"])
    assert tracking.tracking_uri(config) == f"sqlite:///{tmp_path}/mlflow/{tracking.DB_FILE}"
    assert tracking.registry_uri(config) == tracking.tracking_uri(config)
    assert tracking.experiment_name(config, "-evaluation") == "seasonrec-evaluation"


def test_databricks_needs_an_absolute_experiment_and_registers_in_unity_catalog() -> None:
    config = load_config("conf/databricks.yaml", [])
    assert tracking.experiment_name(config) == "/Shared/seasonrec"
    assert tracking.registry_uri(config) == "databricks-uc"
    relative = load_config("conf/databricks.yaml", ["training.mlflow_experiment=seasonrec"])
    with pytest.raises(ConfigError, match="training.mlflow_experiment='seasonrec' must be an absolute"):
        tracking.experiment_name(relative)
