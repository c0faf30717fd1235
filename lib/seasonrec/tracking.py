"""Where MLflow runs and registered models live: one tracking URI and experiment rule for every job.

- ``training.mlflow_tracking_uri`` set: that server/store (``databricks`` on Databricks, an HTTP
  tracking server, ``sqlite:///...``).
- Unset (local mode): a SQLite store at ``<paths.mlflow_dir>/mlflow.db`` with artifacts under
  ``<paths.mlflow_dir>/artifacts``. SQLite rather than MLflow's file store because the model registry
  (``models:/seasonrec-recommender@champion``) needs a database-backed store. On Databricks models are
  registered in Unity Catalog (`registry_uri`).
- Experiment names: on Databricks (``databricks`` URIs) they must be absolute workspace paths such
  as ``/Shared/seasonrec``; `experiment_name` refuses a relative one with the key to set.
"""

from __future__ import annotations

import os
from typing import Any

from seasonrec.config import ConfigError

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"


def tracking_uri(config: Any) -> str:
    """The MLflow tracking (and registry) URI for ``config`` (a `SeasonrecConfig`)."""
    uri = config.training.mlflow_tracking_uri
    if uri:
        return uri
    root = os.path.abspath(config.paths.mlflow_dir)
    os.makedirs(root, exist_ok=True)
    return f"sqlite:///{os.path.join(root, DB_FILE)}"


def registry_uri(config: Any) -> str:
    """Where models are registered: Unity Catalog (``databricks-uc``, model names catalog.schema.name)
    when tracking on Databricks, else the tracking store itself."""
    uri = tracking_uri(config)
    return "databricks-uc" if uri == "databricks" else uri


def experiment_name(config: Any, suffix: str = "") -> str:
    """``training.mlflow_experiment`` (+ ``suffix``), checked for Databricks' absolute-path rule."""
    name = config.training.mlflow_experiment + suffix
    if tracking_uri(config).startswith("databricks") and not name.startswith("/"):
        raise ConfigError(f"training.mlflow_experiment='{config.training.mlflow_experiment}' must be an absolute "
                          "workspace path on Databricks, e.g. /Shared/seasonrec")
    return name


def use_experiment(config: Any, suffix: str = "") -> str:
    """Point the `mlflow` fluent API at the configured store and experiment (created on first use, with
    its artifacts next to the local store); returns the experiment id."""
    import mlflow

    uri = tracking_uri(config)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry_uri(config))
    name = experiment_name(config, suffix)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if uri.startswith("sqlite:///") and not config.training.mlflow_tracking_uri:
            location = "file://" + os.path.join(os.path.abspath(config.paths.mlflow_dir), ARTIFACTS_DIR)
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def client(config: Any) -> Any:
    """An `mlflow.MlflowClient` on the configured tracking and registry store."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri(config), registry_uri=registry_uri(config))


def registered_version_of(config: Any, model_version: str) -> str | None:
    """The registry version of ``serving.model_name`` that holds seasonrec model ``model_version``
    (the latest such), or None: what scoring and evaluation runs record next to the model version."""
    try:
        found = client(config).search_model_versions(f"name = '{config.serving.model_name}'")
    except Exception:  # noqa: BLE001 - no store or nothing registered yet: nothing to record
        return None
    matching = [v.version for v in found if v.tags.get("seasonrec.model_version") == str(model_version)]
    return str(max(matching, key=int)) if matching else None
