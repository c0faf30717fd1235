# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Train (Horovod + Petastorm)
# MAGIC
# MAGIC Trains the season-aware two-tower recommender with Horovod (`training.num_proc` processes, one per GPU on a
# MAGIC GPU cluster) over Petastorm, and writes the model under `paths.model_dir` and `item_embeddings`.
# MAGIC
# MAGIC Same code path as `seasonrec train`, `make train` and `spark-submit jobs/train.py`: this notebook only
# MAGIC collects parameters and calls `seasonrec.cli.run_job("train", ...)`, which runs `seasonrec.training.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `resume` | `SEASONREC_RESUME` | resume from the last checkpoint (true/false) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec train` options |

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
job_options = [*nb.flag("--resume", "resume", "resume from the last checkpoint"), *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `train`

# COMMAND ----------

# DBTITLE 1,Run train
summary = nb.run_job("train", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.ITEM_EMBEDDINGS])
