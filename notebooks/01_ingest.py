# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Ingest (bronze)
# MAGIC
# MAGIC Loads the configured source (the embedded synthetic generator by default, the UCI Online Retail files, or any
# MAGIC mapped CSV/Parquet/JSON file) into `bronze_transactions`; bad rows go to `quarantine` with a reason. Re-runs
# MAGIC MERGE on a row hash, so they never duplicate rows.
# MAGIC
# MAGIC Same code path as `seasonrec ingest`, `make ingest` and `spark-submit jobs/ingest.py`: this notebook only
# MAGIC collects parameters and calls `seasonrec.cli.run_job("ingest", ...)`, which runs `seasonrec.data.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `source` | `SEASONREC_SOURCE` | source: synthetic|online_retail|file (default: data.source) |
# MAGIC | `path` | `SEASONREC_PATH` | input path for file/online_retail sources |
# MAGIC | `since` | `SEASONREC_SINCE` | only rows on/after this date (YYYY-MM-DD) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec ingest` options |

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
job_options = [*nb.option("--source", "source", "", "source: synthetic|online_retail|file"),
               *nb.option("--path", "path", "", "input path for file/online_retail sources"),
               *nb.option("--since", "since", "", "only rows on/after this date"),
               *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `ingest`

# COMMAND ----------

# DBTITLE 1,Run ingest
summary = nb.run_job("ingest", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.BRONZE_TRANSACTIONS, tables.QUARANTINE])
