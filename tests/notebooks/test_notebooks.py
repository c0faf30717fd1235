"""Databricks notebooks: source format, widgets with a local fallback, the bundle that runs them, and a
local top-to-bottom execution of every notebook on small synthetic data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))
STAGE_NOTEBOOKS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]
HEADER = "# Databricks notebook source"
SEPARATOR = "\n# COMMAND ----------\n"
PIPELINE = ["ingest", "features", "train", "register", "score", "forecast", "evaluate"]
GPU_TASKS = {"train", "score", "forecast"}
BUNDLE_TASKS = [*PIPELINE, "maintain"]  # the lake's housekeeping ends the bundle's run (not `seasonrec pipeline`)
SMALL = [
    "data.synthetic.n_users=120", "data.synthetic.n_items=60", "data.synthetic.n_events=3000",
    "data.synthetic.start=2010-06-01", "features.negatives_per_positive=2",
    "training.epochs=1", "training.batch_size=256", "training.embedding_dim=8", "training.user_buckets=500",
    "training.item_buckets=200", "training.early_stopping_patience=0", "training.rerank_candidates=50",
    "scoring.top_k=5", "forecast.models=[seasonal_naive,ets]", "forecast.backtest_windows=1", "forecast.horizon=4",
    "evaluation.als_ranks=[4]", "evaluation.als_reg_params=[0.1]", "evaluation.als_alphas=[10.0]",
    "evaluation.als_max_iter=2", "evaluation.k_list=[5]", "evaluation.methods=[model,global_popularity,repeat_buy]",
]


def cells(path: Path) -> list[tuple[str, str]]:
    """(kind, source) per cell: kind is 'md' for `# MAGIC %md` cells, 'code' otherwise. The source is
    padded with blank lines so line numbers in tracebacks are those of the notebook file."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith(HEADER + "\n"), f"{path.name}: first line must be '{HEADER}'"
    out = []
    line_offset = 1  # the header line
    for raw in text[len(HEADER) + 1:].split(SEPARATOR):
        lines = [line for line in raw.splitlines() if line.strip()]
        if lines and all(line.startswith("# MAGIC") for line in lines):
            out.append(("md" if lines[0].startswith("# MAGIC %md") else "magic", raw.strip("\n")))
        else:
            out.append(("code", "\n" * line_offset + raw))
        line_offset += raw.count("\n") + SEPARATOR.count("\n")
    return out


class FakeDbutils:
    """Records the widgets a notebook declares, as Databricks' dbutils.widgets would show them."""

    def __init__(self) -> None:
        self.widgets = self
        self.declared: dict[str, str] = {}
        self.read: list[str] = []

    def text(self, name: str, default: str, label: str) -> None:
        assert label, f"widget {name} has no label"
        self.declared[name] = default

    def get(self, name: str) -> str:
        self.read.append(name)
        return self.declared[name]


def declared_widgets(path: Path) -> FakeDbutils:
    """Run the notebook's Setup and Parameters cells as on Databricks (dbutils present)."""
    dbutils = FakeDbutils()
    namespace: dict = {"__name__": "__main__", "dbutils": dbutils, "display": print}
    for kind, source in cells(path):
        if kind == "code" and re.match(r"\s*# DBTITLE 1,(Setup|Parameters)\b", source):
            exec(compile(source, str(path), "exec"), namespace)  # noqa: S102
    assert namespace["ON_DATABRICKS"] is True
    return dbutils


def widgets(path: Path) -> set[str]:
    return set(declared_widgets(path).declared)


def test_one_notebook_per_stage_plus_end_to_end() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert names[0] == "00_end_to_end"
    assert [n.split("_", 1)[1] for n in names[1:]] == BUNDLE_TASKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_databricks_source_format(path: Path) -> None:
    parsed = cells(path)
    kinds = [kind for kind, _ in parsed]
    assert kinds[0] == "md" and kinds.count("md") >= 3 and kinds.count("code") >= 3
    assert "magic" not in kinds, "only %md magics: the notebook must run as plain Python outside Databricks"
    code = "\n".join(src for kind, src in parsed if kind == "code")
    compile(code, str(path), "exec")
    # Logic lives in seasonrec: notebooks declare parameters and call the job entry point (run below).
    assert not re.search(r"^\s*(def|class) \w+", code, re.M), "no logic defined in notebooks"
    # The driver imports the wheel the executors run, never workspace files (#18).
    assert "sys.path" not in code, "notebooks import the installed seasonrec only"
    dbutils = declared_widgets(path)
    assert {"conf", "set"} <= set(dbutils.declared)
    assert sorted(dbutils.read) == sorted(dbutils.declared)  # every widget is read back


def test_bundle_runs_the_notebooks_in_pipeline_order() -> None:
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    assert bundle["bundle"]["name"] == "seasonrec"
    job = bundle["resources"]["jobs"]["seasonrec_pipeline"]
    tasks = {task["task_key"]: task for task in job["tasks"]}
    assert list(tasks) == BUNDLE_TASKS
    for previous, current in zip(BUNDLE_TASKS, BUNDLE_TASKS[1:], strict=False):
        assert tasks[current]["depends_on"] == [{"task_key": previous}]
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    variables = {name: str(v.get("default")) for name, v in bundle["variables"].items()}

    def runtime(cluster: dict) -> str:
        version = cluster["spark_version"]
        return variables[version[6:-1]] if version.startswith("${var.") else version

    for name, task in tasks.items():
        cluster = clusters[task["job_cluster_key"]]
        # Only the Horovod trainings and the scoring UDF take the GPU cluster; both runtimes are one release.
        assert ("-gpu-ml-" in runtime(cluster)) == (name in GPU_TASKS), (name, runtime(cluster))
        assert runtime(cluster).split("-")[0] == variables["spark_version"].split("-")[0]
        assert ("spark.task.resource.gpu.amount" in cluster["spark_conf"]) == (name in GPU_TASKS)
        assert 0 < task["timeout_seconds"] <= 6 * 3600 and 1 <= task["max_retries"] <= 3, name
        notebook = REPO / task["notebook_task"]["notebook_path"]
        assert notebook.is_file() and notebook.stem.endswith(name)
        assert set(task["notebook_task"]["base_parameters"]) <= widgets(notebook), f"{name}: parameter w/o widget"
        assert task["libraries"] == [{"whl": "./dist/*.whl"}]
    assert "seasonrec_wheel" in bundle["artifacts"]
    assert {p["name"] for p in job["parameters"]} == {"conf", "set"}
    assert (REPO / "conf" / "databricks.yaml").is_file()


def test_bundle_prod_target_runs_as_a_service_principal_with_notifications() -> None:
    prod = yaml.safe_load((REPO / "databricks.yml").read_text())["targets"]["prod"]
    assert prod["mode"] == "production" and prod["root_path"].startswith("/Workspace/")
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert {p["level"] for p in prod["permissions"]} == {"CAN_MANAGE", "CAN_VIEW"}
    job = prod["resources"]["jobs"]["seasonrec_pipeline"]
    assert job["email_notifications"]["on_failure"] == ["${var.failure_email}"]
    assert [p["level"] for p in job["permissions"]] == ["CAN_MANAGE_RUN"]


def bundle_overrides(bundle: dict, target: str) -> list[str]:
    """The job's ``set`` parameter (the --set overrides every task passes) with the ``${var.*}`` of
    ``target`` filled in: the target's own value, else the variable's default."""
    values = {name: str(v.get("default")) for name, v in bundle["variables"].items()}
    values.update({k: str(v) for k, v in (bundle["targets"][target].get("variables") or {}).items()})
    job = bundle["resources"]["jobs"]["seasonrec_pipeline"]
    text = next(p["default"] for p in job["parameters"] if p["name"] == "set")
    return re.sub(r"\$\{var\.(\w+)\}", lambda m: values[m[1]], text).split()


def test_bundle_keeps_tables_in_unity_catalog_and_only_files_in_volumes() -> None:
    """#18: no table under /Volumes/. Every target names its tables catalog.schema.<table> from its own
    catalog/schema variables; paths under /Volumes/ are file folders only (external tables would put
    the tables under lake_root, so then lake_root must not be a volume)."""
    from seasonrec import tables
    from seasonrec.config import load_config

    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    job = bundle["resources"]["jobs"]["seasonrec_pipeline"]
    text = next(p["default"] for p in job["parameters"] if p["name"] == "set")
    assert "paths.table_namespace=${var.catalog}.${var.schema}" in text.split()
    table_folder = re.compile(r"/Volumes/\S*/(lake|" + "|".join(tables.TABLES) + r")(/|\s|$)")
    for target in ("dev", "prod"):
        own = bundle["targets"][target]["variables"]
        assert {"catalog", "schema"} <= set(own), f"{target}: per-target catalog and schema"
        overrides = bundle_overrides(bundle, target)
        config = load_config(REPO / "conf" / "databricks.yaml", overrides)  # validates the namespace
        assert config.paths.table_namespace == f"{own['catalog']}.{own['schema']}", target
        if config.paths.table_location == "external":
            assert not config.paths.lake_root.startswith("/Volumes/"), target
        assert not table_folder.search(" ".join(overrides)), target
        assert config.serving.model_name.startswith(f"{config.paths.table_namespace}."), target
    assert bundle["targets"]["dev"]["variables"]["catalog"] != bundle["targets"]["prod"]["variables"]["catalog"]
    assert not table_folder.search((REPO / "databricks.yml").read_text())
    conf = load_config(REPO / "conf" / "databricks.yaml")
    assert conf.paths.table_namespace and conf.paths.table_location == "managed"
    assert not table_folder.search((REPO / "conf" / "databricks.yaml").read_text())


def run_notebook(path: Path) -> dict:
    """Execute the code cells top to bottom in one namespace, as a notebook kernel would."""
    namespace: dict = {"__name__": "__main__"}
    for kind, source in cells(path):
        if kind == "code":
            exec(compile(source, str(path), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.slow
def test_notebooks_run_locally_top_to_bottom(spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage notebooks 01..07 in order on one lake, then the end-to-end notebook (a subset of jobs) on it."""
    from seasonrec.lake import Lake

    def use_lake(root: Path) -> None:
        paths = [f"paths.{key}={root}/{key}" for key in
                 ("model_dir", "checkpoint_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
        monkeypatch.setenv("SEASONREC_SET", " ".join([f"paths.lake_root={root}/lake", *paths, *SMALL]))

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SEASONREC_CONF", "conf/test.yaml")
    use_lake(tmp_path / "stages")
    summaries = {}
    for path in STAGE_NOTEBOOKS:
        namespace = run_notebook(path)
        assert namespace["ON_DATABRICKS"] is False
        assert namespace["summary"]["job"] == path.stem.split("_", 1)[1]
        summaries[namespace["summary"]["job"]] = namespace["summary"]
    stage_lake = Lake(spark, str(tmp_path / "stages" / "lake"))
    for table in ("bronze_transactions", "gold_training_examples", "item_embeddings", "recommendations",
                  "demand_forecast", "evaluation_runs"):
        assert stage_lake.exists(table) and stage_lake.read(table).limit(1).count() == 1, table
    assert Path(summaries["evaluate"]["report"]).is_file()
    from seasonrec import tables

    for table in tables.TABLES.values():  # every declared key identifies one row
        if table.keys and stage_lake.exists(table.name):
            df = stage_lake.read(table.name)
            assert df.count() == df.select(*table.keys).distinct().count(), table.name

    # The end-to-end notebook on the same lake: re-running ingest adds no rows, score rewrites its partition.
    bronze_rows = stage_lake.read("bronze_transactions").count()
    monkeypatch.setenv("SEASONREC_JOBS", "ingest,score")
    namespace = run_notebook(NOTEBOOKS[0])
    assert list(namespace["summaries"]) == ["ingest", "score"]
    assert stage_lake.read("bronze_transactions").count() == bronze_rows
    assert stage_lake.read("recommendations").count() > 0
