# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Register (MLflow pyfunc model, registry, Model Serving)
# MAGIC
# MAGIC Logs the trained recommender (two-tower retrieval + candidate sources + LightGBM ranker) as an MLflow `pyfunc`
# MAGIC model with a serving snapshot at `date`, registers it as `serving.model_name` and sets the `champion` alias
# MAGIC when it passes the quality gate (recall@20 at least repeat-buy's on the training run's test window).
# MAGIC On Databricks, with `serving_endpoint` set, it then creates or updates that Model Serving endpoint to serve
# MAGIC the champion version (the salt comes from the `seasonrec/user_id_salt` secret).
# MAGIC
# MAGIC Same code path as `seasonrec register`, `make register`: this notebook only collects parameters and calls
# MAGIC `seasonrec.cli.run_job("register", ...)`, which runs `seasonrec.serving.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `date` | `SEASONREC_DATE` | snapshot date YYYY-MM-DD (default: split.validation_end, as `score`) |
# MAGIC | `serving_endpoint` | `SEASONREC_SERVING_ENDPOINT` | endpoint to serve the champion (Databricks; empty: skip) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec register` options |

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
job_options = [*nb.option("--date", "date", "", "snapshot date YYYY-MM-DD"), *nb.extra_options()]
serving_endpoint = nb.param("serving_endpoint", "", "Model Serving endpoint (empty: skip)")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `register`

# COMMAND ----------

# DBTITLE 1,Run register
summary = nb.run_job("register", conf, overrides, job_options)
{key: summary[key] for key in ("registered_model", "registered_version", "champion", "gate")}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Model Serving (Databricks)
# MAGIC Creates or updates the endpoint to serve the champion version; scale-to-zero, small workload. Requests as in
# MAGIC the README's Serving section (`dataframe_records` with user_id, date, country, recent_items, k).

# COMMAND ----------

# DBTITLE 1,Point the endpoint at the champion
if ON_DATABRICKS and serving_endpoint and summary["champion"]:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

    served = [ServedEntityInput(entity_name=summary["registered_model"], entity_version=summary["registered_version"],
                                workload_size="Small", scale_to_zero_enabled=True,
                                environment_vars={"SEASONREC_SALT": "{{secrets/seasonrec/user_id_salt}}"})]
    workspace = WorkspaceClient()
    if any(e.name == serving_endpoint for e in workspace.serving_endpoints.list()):
        workspace.serving_endpoints.update_config(name=serving_endpoint, served_entities=served)
    else:
        workspace.serving_endpoints.create(name=serving_endpoint,
                                           config=EndpointCoreConfigInput(served_entities=served))
    print(f"endpoint {serving_endpoint} -> {summary['registered_model']} v{summary['registered_version']}")
else:
    print("Model Serving step skipped (runs on Databricks with serving_endpoint set and a champion)")
