# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Maintain (vacuum + compaction)
# MAGIC
# MAGIC For every seasonrec table in the lake: deletes files no version inside `maintenance.retention_hours`
# MAGIC references (overwritten versions, files of killed writes) and, with `compact`, rewrites small files into
# MAGIC fewer large ones. A table with nothing to do gets no commit.
# MAGIC
# MAGIC Same code path as `seasonrec maintain`, `make maintain` and `spark-submit jobs/maintain.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("maintain", ...)`, which runs
# MAGIC `seasonrec.maintenance.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | `section.key=value` overrides, e.g. `maintenance.retention_hours=336` |
# MAGIC | `compact` | `SEASONREC_COMPACT` | true: also compact small files |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec maintain` options |

# COMMAND ----------

# DBTITLE 1,Setup
# seasonrec is the wheel the bundle installs on the cluster (the task's `libraries`), or the project's venv
# locally (`make setup` installs it editable): never workspace files, so driver and executors run one version.
from seasonrec.notebook import Notebook

nb = Notebook(globals())  # widgets and display() on Databricks, SEASONREC_<NAME> variables elsewhere
ON_DATABRICKS = nb.on_databricks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf, overrides = nb.config_params()
job_options = [*nb.flag("--compact", "compact", "also compact small files (true/false)"), *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `maintain`

# COMMAND ----------

# DBTITLE 1,Run maintain
summary = nb.run_job("maintain", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Per table: files removed and compacted, versions before and after.

# COMMAND ----------

# DBTITLE 1,Outputs
for name, done in summary["tables"].items():
    print(name, done)
print("staging folders removed:", summary["staging_removed"])
