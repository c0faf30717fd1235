# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · end to end
# MAGIC
# MAGIC Runs ingest → features → train → score → forecast → evaluate in order, each through `seasonrec.cli.run_job`
# MAGIC (the code path of `seasonrec pipeline`, `make demo` and the Databricks workflow in `databricks.yml`), then
# MAGIC lists every Delta table with its version.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, `SEASONREC_<NAME>` environment variables elsewhere:
# MAGIC
# MAGIC | widget | meaning |
# MAGIC |---|---|
# MAGIC | `conf` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | space-separated `section.key=value` overrides |
# MAGIC | `jobs` | comma-separated subset of the stages, in order |
# MAGIC | `date` | scoring context date (`score --date`) |
# MAGIC | `as_of` / `horizon` | forecast origin and weeks ahead |
# MAGIC | `split` | evaluation split (validation/test) |

# COMMAND ----------

# DBTITLE 1,Setup
import os
import shlex
import sys
from pathlib import Path

try:
    dbutils  # noqa: B018,F821 - injected by Databricks
    ON_DATABRICKS = True
except NameError:
    ON_DATABRICKS = False

# Outside an installed wheel (a Databricks Repo / workspace files), import seasonrec from ../lib.
for candidate in (Path.cwd() / "lib", Path.cwd().parent / "lib"):
    if (candidate / "seasonrec").is_dir() and str(candidate) not in sys.path:
        sys.path.insert(0, str(candidate))


def param(name: str, default: str = "", label: str = "") -> str:
    """A text widget on Databricks (job tasks fill it from base_parameters); elsewhere the
    environment variable SEASONREC_<NAME>, else the default."""
    if ON_DATABRICKS:
        dbutils.widgets.text(name, default, label or name)  # noqa: F821
        return dbutils.widgets.get(name).strip()  # noqa: F821
    return os.environ.get(f"SEASONREC_{name.upper()}", default).strip()


def show(df, rows: int = 10) -> None:
    """display() on Databricks, a text table elsewhere."""
    if ON_DATABRICKS:
        display(df.limit(rows))  # noqa: F821
    else:
        df.show(rows, truncate=60)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf = param("conf", "../conf/databricks.yaml" if ON_DATABRICKS else "conf/local.yaml", "config file")
overrides = shlex.split(param("set", "", "overrides key=value ..."))
jobs = [name.strip() for name in param("jobs", "ingest,features,train,score,forecast,evaluate", "jobs").split(",")
        if name.strip()]
stage_options = {
    "score": ["--date", param("date", "", "score date")],
    "forecast": ["--as-of", param("as_of", "", "forecast as-of"), "--horizon", param("horizon", "", "horizon")],
    "evaluate": ["--split", param("split", "test", "evaluation split")],
}
# Keep only the options that were given a value.
stage_options = {job: [arg for flag, value in zip(opts[::2], opts[1::2], strict=True) if value
                       for arg in (flag, value)] for job, opts in stage_options.items()}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the pipeline

# COMMAND ----------

# DBTITLE 1,Run
from seasonrec.cli import JOBS, build_parser, run_job
from seasonrec.config import ConfigError

unknown = [job for job in jobs if job not in JOBS]
if unknown:
    raise ConfigError(f"unknown job(s) {unknown}; allowed: {', '.join(JOBS)}")
summaries = {}
for job in jobs:
    argv = [job, "--conf", conf, *[arg for kv in overrides for arg in ("--set", kv)], *stage_options.get(job, [])]
    summaries[job] = run_job(job, build_parser(only=job).parse_args(argv))
{job: summary["seconds"] for job, summary in summaries.items()}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs

# COMMAND ----------

# DBTITLE 1,Outputs
from seasonrec import tables
from seasonrec.config import load_config
from seasonrec.lake import Lake
from seasonrec.spark import get_spark

OUTPUT_TABLES = [value for name, value in vars(tables).items() if name.isupper() and isinstance(value, str)]

config = load_config(conf, overrides)
lake = Lake(get_spark(config), config.paths.lake_root)
for table in OUTPUT_TABLES:
    if lake.exists(table):
        print(f"{table}: version {lake.version(table)}, {lake.read(table).count()} rows at {lake.path(table)}")
    else:
        print(f"{table}: not written by this run")
report = summaries.get("evaluate", {}).get("report")
if report:
    print("evaluation report:", report)
