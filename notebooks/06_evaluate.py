# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Evaluate (metrics + report)
# MAGIC
# MAGIC Ranking, long-tail and seasonal metrics for the model and the popularity, repeat-buy, item-kNN and ALS
# MAGIC baselines on a time split; appends to `evaluation_runs` and writes a Markdown + PNG report.
# MAGIC
# MAGIC Same code path as `seasonrec evaluate`, `make evaluate` and `spark-submit jobs/evaluate.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("evaluate", ...)`, which runs
# MAGIC `seasonrec.evaluation.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `split` | `SEASONREC_SPLIT` | validation|test |
# MAGIC | `methods` | `SEASONREC_METHODS` | comma-separated subset of methods (default: all) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec evaluate` options |

# COMMAND ----------

# DBTITLE 1,Setup
import sys
from pathlib import Path

# Outside an installed wheel (a Databricks Repo / workspace files), import seasonrec from ../lib.
sys.path[:0] = [str(p) for p in (Path.cwd() / "lib", Path.cwd().parent / "lib") if (p / "seasonrec").is_dir()]

from seasonrec import tables  # noqa: E402
from seasonrec.notebook import Notebook  # noqa: E402

nb = Notebook(globals())  # widgets and display() on Databricks, SEASONREC_<NAME> variables elsewhere
ON_DATABRICKS = nb.on_databricks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf, overrides = nb.config_params()
job_options = [*nb.option("--split", "split", "test", "validation|test"),
               *nb.option("--methods", "methods", "", "comma-separated subset of methods"),
               *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `evaluate`

# COMMAND ----------

# DBTITLE 1,Run evaluate
summary = nb.run_job("evaluate", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.EVALUATION_RUNS])
if summary.get("report"):
    print("report:", summary["report"])
    if ON_DATABRICKS:
        displayHTML("<pre>" + Path(summary["report"]).read_text() + "</pre>")  # noqa: F821
