# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Features (silver + gold)
# MAGIC
# MAGIC Builds `silver_interactions`, `silver_items`, the seasonal `calendar` and the gold user/item features plus
# MAGIC leak-free `gold_training_examples` from bronze.
# MAGIC
# MAGIC Same code path as `seasonrec features`, `make features` and `spark-submit jobs/features.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("features", ...)`, which runs
# MAGIC `seasonrec.features.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `since` | `SEASONREC_SINCE` | recompute from this date (YYYY-MM-DD) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec features` options |

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
job_options: list[str] = []
since = param("since", "", "recompute from this date")
if since:
    job_options += ["--since", since]
job_options += shlex.split(param("options", "", "other job options"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `features`

# COMMAND ----------

# DBTITLE 1,Run features
from seasonrec.cli import build_parser, run_job

JOB = "features"
argv = [JOB, "--conf", conf, *[arg for kv in overrides for arg in ("--set", kv)], *job_options]
args = build_parser(only=JOB).parse_args(argv)
summary = run_job(JOB, args)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
from seasonrec import tables
from seasonrec.config import load_config
from seasonrec.lake import Lake
from seasonrec.spark import get_spark

OUTPUT_TABLES = [
    tables.SILVER_INTERACTIONS,
    tables.CALENDAR,
    tables.ITEM_FEATURES,
    tables.USER_FEATURES,
    tables.TRAINING_EXAMPLES,
]

config = load_config(conf, overrides)
lake = Lake(get_spark(config), config.paths.lake_root)
for table in OUTPUT_TABLES:
    if lake.exists(table):
        print(f"{table}: version {lake.version(table)}, {lake.read(table).count()} rows at {lake.path(table)}")
        show(lake.read(table))
    else:
        print(f"{table}: not written by this run")
