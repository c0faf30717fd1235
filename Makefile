# seasonrec local mode. Every target bootstraps .venv first (fast when nothing changed).
#   make demo                      whole pipeline on the embedded synthetic data
#   make features CONF=conf/local.yaml SET="features.negatives_per_positive=8"
#   make score ARGS="--date 2011-11-15"
#   make package && make submit JOB=features CONF=conf/cluster.yaml MASTER=spark://host:7077
SHELL := /bin/bash
PY := .venv/bin/python
CONF ?= conf/local.yaml
SET ?=
ARGS ?=
SET_ARGS := $(foreach s,$(SET),--set $(s))
SEASONREC := $(PY) -m seasonrec.cli
# Cluster mode (make submit): JOB, MASTER, DELTA_PACKAGES (e.g. io.delta:delta-spark_2.12:3.2.0), SUBMIT_ARGS.
JOB ?=
MASTER ?=
DELTA_PACKAGES ?=
SUBMIT_ARGS ?=
# Without an explicit CONF=, submit uses conf/cluster.yaml (it leaves the master to spark-submit).
SUBMIT_CONF := $(if $(filter file default,$(origin CONF)),conf/cluster.yaml,$(CONF))
SEASONREC_SOURCES := $(shell find lib/seasonrec -name '*.py' 2>/dev/null)
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.DEFAULT_GOAL := help
.PHONY: help setup demo pipeline ingest features train register score forecast evaluate stream serve maintain show test bench lint package submit clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  options: CONF=<yaml> SET=\"key=value ...\" ARGS=\"<job options>\""

setup: ## create/update the repo-local virtualenv (.venv) with the pinned stack
	@./scripts/bootstrap.sh

demo: setup ## run ingest -> features -> train -> register -> score -> forecast -> evaluate on the embedded synthetic data
	$(SEASONREC) pipeline --conf $(CONF) $(SET_ARGS) $(ARGS)

pipeline: demo ## same as demo

ingest: setup ## bronze: load the configured source (synthetic by default) with quarantine
	$(SEASONREC) ingest --conf $(CONF) $(SET_ARGS) $(ARGS)

features: setup ## silver + gold: interactions, calendar, user/item features, training examples
	$(SEASONREC) features --conf $(CONF) $(SET_ARGS) $(ARGS)

train: setup ## Horovod + Petastorm training of the season-aware recommender
	$(SEASONREC) train --conf $(CONF) $(SET_ARGS) $(ARGS)

register: setup ## log the trained model as an MLflow pyfunc, register it, alias champion if it passes the gate
	$(SEASONREC) register --conf $(CONF) $(SET_ARGS) $(ARGS)

score: setup ## full-catalog scoring with a Spark UDF, top-K to Delta (ARGS="--date YYYY-MM-DD")
	$(SEASONREC) score --conf $(CONF) $(SET_ARGS) $(ARGS)

forecast: setup ## weekly demand forecast per item (ARGS="--as-of YYYY-MM-DD --horizon 13")
	$(SEASONREC) forecast --conf $(CONF) $(SET_ARGS) $(ARGS)

evaluate: setup ## offline evaluation against baselines, report with plots (ARGS="--split test")
	$(SEASONREC) evaluate --conf $(CONF) $(SET_ARGS) $(ARGS)

stream: setup ## streaming: new event files/Kafka -> bronze + user_recent_activity, exactly-once (ARGS="--once")
	$(SEASONREC) stream --conf $(CONF) $(SET_ARGS) $(ARGS)

serve: setup ## serve the champion on loopback with `mlflow models serve` (after make demo; ARGS="--port 5001")
	$(SEASONREC) serve --conf $(CONF) $(SET_ARGS) $(ARGS)

maintain: setup ## vacuum every table (unreferenced files, _staging leftovers older than maintenance.retention_hours; ARGS="--compact")
	$(SEASONREC) maintain --conf $(CONF) $(SET_ARGS) $(ARGS)

show: setup ## print rows of a lake table (ARGS="recommendations --limit 5 [--where SQL] [--columns a,b]")
	$(SEASONREC) show --conf $(CONF) $(SET_ARGS) $(ARGS)

test: setup ## the whole test suite (real Spark, Delta, Horovod, TensorFlow)
	$(PY) -m pytest tests -q -ra --durations=25 $(ARGS)

lint: setup ## ruff
	$(PY) -m ruff check lib tests jobs bench

bench: setup ## benchmarks, JSON with side-by-side ratios
	$(PY) bench/run_all.py $(ARGS)

package: setup dist/seasonrec.zip ## build dist/ for spark-submit: the wheel, seasonrec.zip (--py-files) and jobs/*.py
	rm -f dist/seasonrec-*.whl
	$(PY) -m pip wheel --no-deps --no-build-isolation -q -w dist .
	rm -rf dist/jobs && mkdir -p dist/jobs && cp jobs/*.py dist/jobs/
	@echo "packaged: $$(cd dist && ls seasonrec-*.whl) seasonrec.zip jobs/ -> $(abspath dist)"

dist/seasonrec.zip: $(SEASONREC_SOURCES)
	@mkdir -p dist && rm -f $@
	cd lib && zip -qr ../$@ seasonrec -x '*__pycache__*' '*.pyc' '*.egg-info*'

submit: setup dist/seasonrec.zip ## spark-submit a job to a cluster (JOB=features MASTER=spark://host:7077 [DELTA_PACKAGES=..])
	MASTER="$(MASTER)" CONF="$(SUBMIT_CONF)" SET="$(SET)" DELTA_PACKAGES="$(DELTA_PACKAGES)" \
	  SUBMIT_ARGS="$(SUBMIT_ARGS)" ./scripts/submit.sh "$(JOB)" $(ARGS)

clean: ## remove the local lake, reports and build outputs (keeps .venv)
	@if [ -f .cluster/cluster.json ] && [ -x $(PY) ]; then $(PY) scripts/standalone_cluster.py stop; fi
	rm -rf lake reports dist build spark-warehouse metastore_db derby.log lib/*.egg-info .cluster
