# seasonrec local mode. Every target bootstraps .venv first (fast when nothing changed).
#   make demo                      whole pipeline on the embedded synthetic data
#   make features CONF=conf/local.yaml SET="features.negatives_per_positive=8"
#   make score ARGS="--date 2011-11-15"
SHELL := /bin/bash
PY := .venv/bin/python
CONF ?= conf/local.yaml
SET ?=
ARGS ?=
SET_ARGS := $(foreach s,$(SET),--set $(s))
SEASONREC := $(PY) -m seasonrec.cli
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.DEFAULT_GOAL := help
.PHONY: help setup demo pipeline ingest features train score forecast evaluate test test-fast bench lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  options: CONF=<yaml> SET=\"key=value ...\" ARGS=\"<job options>\""

setup: ## create/update the repo-local virtualenv (.venv) with the pinned stack
	@./scripts/bootstrap.sh

demo: setup ## run ingest -> features -> train -> score -> forecast -> evaluate on the embedded synthetic data
	$(SEASONREC) pipeline --conf $(CONF) $(SET_ARGS) $(ARGS)

pipeline: demo ## same as demo

ingest: setup ## bronze: load the configured source (synthetic by default) with quarantine
	$(SEASONREC) ingest --conf $(CONF) $(SET_ARGS) $(ARGS)

features: setup ## silver + gold: interactions, calendar, user/item features, training examples
	$(SEASONREC) features --conf $(CONF) $(SET_ARGS) $(ARGS)

train: setup ## Horovod + Petastorm training of the season-aware recommender
	$(SEASONREC) train --conf $(CONF) $(SET_ARGS) $(ARGS)

score: setup ## full-catalog scoring with a Spark UDF, top-K to Delta (ARGS="--date YYYY-MM-DD")
	$(SEASONREC) score --conf $(CONF) $(SET_ARGS) $(ARGS)

forecast: setup ## weekly demand forecast per item (ARGS="--as-of YYYY-MM-DD --horizon 13")
	$(SEASONREC) forecast --conf $(CONF) $(SET_ARGS) $(ARGS)

evaluate: setup ## offline evaluation against baselines, report with plots (ARGS="--split test")
	$(SEASONREC) evaluate --conf $(CONF) $(SET_ARGS) $(ARGS)

test: setup ## the whole test suite (real Spark, Delta, Horovod, TensorFlow)
	$(PY) -m pytest tests -q -ra $(ARGS)

lint: setup ## ruff
	$(PY) -m ruff check lib tests jobs bench

bench: setup ## benchmarks, JSON with side-by-side ratios
	$(PY) bench/run_all.py $(ARGS)

clean: ## remove the local lake, reports and build outputs (keeps .venv)
	rm -rf lake reports dist build spark-warehouse metastore_db derby.log lib/*.egg-info
