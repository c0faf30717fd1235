"""The pipeline on a real Spark standalone cluster on loopback, submitted with spark-submit.

A master and two workers (1 core, 2g each) are started with ``spark-class ...Master/Worker`` by
``scripts/standalone_cluster.py``; every job goes through ``scripts/submit.sh`` (what ``make submit``
runs) with ``--py-files`` of the packaged ``seasonrec``. Training runs Horovod with ``num_proc=2``,
one Spark task per worker core. The lake is a shared folder, so Lake uses the local delta-rs commit
engine (Maven Central is unreachable, no delta-spark JAR). The cluster is always shut down: the
fixture's teardown kills the process groups of the master, the workers and their executors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
SUBMIT = REPO / "scripts" / "submit.sh"
# Tiny synthetic data: the point is the cluster wiring, not model quality.
SMALL = [
    "data.synthetic.n_users=120", "data.synthetic.n_items=60", "data.synthetic.n_events=3000",
    "data.synthetic.start=2010-06-01", "features.negatives_per_positive=2",
    "training.epochs=1", "training.batch_size=256", "training.embedding_dim=8", "training.user_buckets=500",
    "training.item_buckets=200", "training.early_stopping_patience=0", "training.rerank_candidates=50",
    "scoring.top_k=5", "spark.shuffle_partitions=4",
    "forecast.models=[seasonal_naive,ets]", "forecast.backtest_windows=1", "forecast.horizon=4",
    "evaluation.als_ranks=[4]", "evaluation.als_reg_params=[0.1]", "evaluation.als_alphas=[10.0]",
    "evaluation.als_max_iter=2", "evaluation.k_list=[5]", "evaluation.methods=[model,global_popularity,repeat_buy]",
]
SUBMIT_ARGS = ("--total-executor-cores 2 --executor-cores 1 --executor-memory 1g --driver-memory 1g "
               "--conf spark.ui.enabled=false --conf spark.task.maxFailures=1")


def _load_cluster_module() -> Any:
    spec = importlib.util.spec_from_file_location("standalone_cluster", REPO / "scripts" / "standalone_cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    standalone = _load_cluster_module()
    instance = standalone.StandaloneCluster(state_dir=tmp_path_factory.mktemp("cluster"), workers=2, cores=1,
                                            memory="2g", python=str(VENV_PYTHON))
    try:
        instance.start(timeout=180)  # stops whatever it started if it fails
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def py_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make package` puts in dist/seasonrec.zip, built into a temp dir (no shared dist/ writes)."""
    target = tmp_path_factory.mktemp("dist") / "seasonrec.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((REPO / "lib" / "seasonrec").rglob("*.py")):
            archive.write(path, path.relative_to(REPO / "lib").as_posix())
    return target


def submit(job: str, *options: str, master: str, py_files: Path, overrides: list[str],
           timeout: float = 1200) -> tuple[str, str]:
    """scripts/submit.sh JOB OPTIONS; returns (stdout, stderr)."""
    env = {
        **os.environ,
        "MASTER": master, "CONF": "conf/cluster.yaml", "PY_FILES": str(py_files), "SET": " ".join(overrides),
        "SUBMIT_ARGS": SUBMIT_ARGS, "PYSPARK_PYTHON": str(VENV_PYTHON), "SPARK_LOCAL_IP": "127.0.0.1",
        "SEASONREC_SALT": "cluster-test-salt", "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("SPARK_HOME", None)
    started = time.monotonic()
    proc = run_in_own_group([str(SUBMIT), job, *options], env, timeout)
    print(f"submit {job}: exit {proc.returncode} in {time.monotonic() - started:.0f}s")
    for line in (proc.stdout + proc.stderr).splitlines():  # per-step timings, for the CI log
        if re.search(r"INFO \[\w+\] .* done in [\d.]+s$", line):
            print("   ", line)
    tail = "\n".join(proc.stderr.splitlines()[-40:])
    assert proc.returncode == 0, f"spark-submit {job} failed (exit {proc.returncode}):\n{tail}"
    return proc.stdout, proc.stderr


def run_in_own_group(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run spark-submit in its own process group so a timeout also kills the Python driver it forked."""
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(argv[:2])} timed out after {timeout:.0f}s:\n" + "\n".join(stderr.splitlines()[-30:]))
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _job_summary(report_dir: Path, job: str) -> dict[str, Any]:
    """The full summary every job writes to ``<report_dir>/runs/<job>-<run_id>.json`` (the pipeline
    command logs one line per job and prints no JSON)."""
    paths = sorted((report_dir / "runs").glob(f"{job}-*.json"), key=lambda p: p.stat().st_mtime)
    assert paths, f"no {job} summary under {report_dir / 'runs'}"
    return json.loads(paths[-1].read_text())


def _last_summary(stdout: str) -> dict[str, Any]:
    """A single job run with a non-terminal stdout prints its summary as indented JSON from a line '{'."""
    starts = [i for i, line in enumerate(stdout.splitlines()) if line == "{"]
    assert starts, f"no job summary in stdout:\n{stdout[-2000:]}"
    text = "\n".join(stdout.splitlines()[starts[-1]:])
    return json.JSONDecoder().raw_decode(text)[0]


def delta_rows(table_path: Path, where: str = "") -> int:
    """Row count through delta-rs SQL (no pyarrow dataset: see DEVELOPERS.md)."""
    from deltalake import DeltaTable, QueryBuilder

    result = QueryBuilder().register("t", DeltaTable(str(table_path))).execute(
        f"SELECT count(*) AS n FROM t {where}").read_all()
    return int(result.column("n")[0].as_py())


def test_submit_composes_confs(tmp_path: Path) -> None:
    """The spark-submit line carries UTC, the executor python, py-files and (when asked) Delta."""
    env = {**os.environ, "MASTER": "spark://10.0.0.1:7077", "SUBMIT_DRY_RUN": "1", "SET": "training.epochs=2",
           "DELTA_PACKAGES": "io.delta:delta-spark_2.12:3.2.0", "PY_FILES": str(SUBMIT)}
    line = subprocess.run([str(SUBMIT), "features", "--since", "2011-01-01"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True).stdout
    for expected in ("--master spark://10.0.0.1:7077", "spark.sql.session.timeZone=UTC",
                     f"spark.executorEnv.PYSPARK_PYTHON={VENV_PYTHON}", f"spark.pyspark.python={VENV_PYTHON}",
                     "--packages io.delta:delta-spark_2.12:3.2.0",
                     "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
                     "jobs/features.py --conf conf/cluster.yaml --set training.epochs=2 --since 2011-01-01"):
        assert expected in line, f"{expected!r} missing from: {line}"
    bad = subprocess.run([str(SUBMIT), "featurez"], cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "unknown job 'featurez'" in bad.stderr and "features" in bad.stderr


@pytest.mark.slow
def test_smoke_delta_and_horovod_on_cluster(cluster, py_files: Path, tmp_path: Path) -> None:
    """A Delta write/merge/time-travel through Lake and a 2-process Horovod allreduce on the workers."""
    lake = tmp_path / "lake"
    env = {**os.environ, "MASTER": cluster.master_url, "PY_FILES": str(py_files), "SUBMIT_ARGS": SUBMIT_ARGS,
           "SPARK_LOCAL_IP": "127.0.0.1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYSPARK_PYTHON": str(VENV_PYTHON)}
    proc = run_in_own_group([str(SUBMIT), "tests/cluster/smoke_job.py", "--set", f"paths.lake_root={lake}"], env, 600)
    assert proc.returncode == 0, "\n".join(proc.stderr.splitlines()[-40:])
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("SMOKE "))[6:])
    assert result["master"] == cluster.master_url
    assert result["engine"] == "delta-rs" and result["timezone"] == "UTC"
    assert result["versions"] == [0, 1] and result["rows"] == 1010 and result["rows_v0"] == 1000
    assert len(result["executor_parents"]) == 2  # tasks ran in two executors, one per worker
    ranks = sorted(result["horovod"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["size"] == 2 for r in ranks)
    assert all(r["allreduce_sum"] == 3.0 for r in ranks)
    assert all(r["python"] == str(VENV_PYTHON) for r in ranks)
    assert delta_rows(lake / "smoke") == 1010


@pytest.mark.slow
def test_pipeline_on_standalone_cluster(cluster, py_files: Path, tmp_path: Path) -> None:
    root = tmp_path
    overrides = [f"paths.lake_root={root}/lake", f"paths.model_dir={root}/models",
                 f"paths.checkpoint_dir={root}/checkpoints", f"paths.mlflow_dir={root}/mlflow",
                 f"paths.report_dir={root}/reports", f"paths.petastorm_cache_dir={root}/petastorm_cache",
                 "training.num_proc=2", "forecast.num_proc=2", *SMALL]
    started = time.monotonic()
    # One app per job, like a scheduler would run them; the lake carries the state between apps.
    stdout, _ = submit("ingest", master=cluster.master_url, py_files=py_files, overrides=overrides)
    assert _last_summary(stdout)["job"] == "ingest"
    env_jobs = "features,train,score,forecast,evaluate"
    submit("pipeline", "--jobs", env_jobs, master=cluster.master_url, py_files=py_files,
           overrides=overrides, timeout=2400)
    assert _job_summary(root / "reports", "evaluate")["job"] == "evaluate"
    print(f"pipeline on the cluster: {time.monotonic() - started:.0f}s")

    lake = root / "lake"
    from deltalake import DeltaTable

    for table in ("bronze_transactions", "silver_interactions", "calendar", "gold_item_features",
                  "gold_user_features", "gold_training_examples", "item_embeddings", "recommendations",
                  "demand_forecast", "evaluation_runs"):
        assert DeltaTable.is_deltatable(str(lake / table)), f"{table} is not a Delta table"
        assert delta_rows(lake / table) > 0, f"{table} is empty"
    assert delta_rows(lake / "recommendations", "WHERE rank > 5") == 0  # top_k=5 from --set reached the job
    # Every commit was made by this run's jobs through Lake and recorded which job made it.
    history = DeltaTable(str(lake / "recommendations")).history()
    assert any("seasonrec.job" in json.dumps(entry) for entry in history)
    # Both workers ran executors for the pipeline app (Horovod needs one task slot on each).
    status = cluster.status()
    apps = [app for app in status["completedapps"] if app["name"] == "seasonrec-pipeline"]
    assert apps and apps[0]["cores"] == 2
    worker_dirs = [p for p in (cluster.state_dir / "work").iterdir() if p.is_dir()]
    assert all(any((d / apps[0]["id"]).glob("*/stderr")) for d in worker_dirs), "an idle worker"
