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
from pathlib import Path

# seasonrec is the wheel the bundle installs on the cluster (the task's `libraries`), or the project's venv
# locally (`make setup` installs it editable): never workspace files, so driver and executors run one version.
from seasonrec import tables
from seasonrec.notebook import Notebook

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
