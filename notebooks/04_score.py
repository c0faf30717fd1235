# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Score (full catalog, Spark UDF)
# MAGIC
# MAGIC Scores every user against every item for the season of `date` with a vectorized Spark UDF and writes the top-K
# MAGIC per user to `recommendations` (partitioned by `context_date`).
# MAGIC
# MAGIC Same code path as `seasonrec score`, `make score` and `spark-submit jobs/score.py`: this notebook only
# MAGIC collects parameters and calls `seasonrec.cli.run_job("score", ...)`, which runs `seasonrec.scoring.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `date` | `SEASONREC_DATE` | context date YYYY-MM-DD (default: the job's default) |
# MAGIC | `top_k` | `SEASONREC_TOP_K` | list length (default: scoring.top_k) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec score` options |

# COMMAND ----------

# DBTITLE 1,Setup
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
job_options = [*nb.option("--date", "date", "", "context date YYYY-MM-DD"),
               *nb.option("--top-k", "top_k", "", "list length"),
               *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `score`

# COMMAND ----------

# DBTITLE 1,Run score
summary = nb.run_job("score", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.RECOMMENDATIONS])
