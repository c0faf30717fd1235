"""End-to-end offline evaluation on Online Retail: ingest -> features -> [train -> ] evaluate, one command.

    .venv/bin/python bench/eval_online_retail.py                 # baselines (+ the model if one exists)
    .venv/bin/python bench/eval_online_retail.py --train         # train the model first (slow)
    .venv/bin/python bench/eval_online_retail.py --skip-ingest   # reuse the lake of a previous run

Split (from config): train < 2011-08-01 <= validation (August, ALS grid) < 2011-09-01 <= test (September)
< 2011-10-01, so every method of the test evaluation is fitted on rows up to 2011-08-31. Everything
runs in one Python process and one local Spark session; the lake, MLflow store and report live under
``--workdir`` (default /tmp/seasonrec_online_retail). Prints the methods x metrics table and writes
it next to the report (``methods_metrics.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

SPLIT = ["split.train_end=2011-08-01", "split.validation_end=2011-09-01", "split.test_end=2011-10-01"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/seasonrec_online_retail")
    parser.add_argument("--conf", default=str(REPO / "conf" / "local.yaml"))
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/online_retail/"
                                              "online_retail_2010-12_2011-09.csv.gz"))
    parser.add_argument("--skip-ingest", action="store_true", help="reuse bronze/silver/gold in --workdir")
    parser.add_argument("--train", action="store_true", help="train (and evaluate) the model too")
    parser.add_argument("--methods", default=None, help="evaluation methods (default: all configured)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from seasonrec.cli import build_parser, run_job

    work = Path(args.workdir)
    paths = {"lake_root": work / "lake", "checkpoint_dir": work / "lake/_checkpoints",
             "model_dir": work / "lake/_models", "mlflow_dir": work / "lake/_mlflow", "report_dir": work / "reports",
             "petastorm_cache_dir": work / "lake/_petastorm_cache"}
    overrides = [f"paths.{k}={v}" for k, v in paths.items()] + ["data.source=online_retail", *SPLIT, *args.overrides]
    common = ["--conf", args.conf] + [item for o in overrides for item in ("--set", o)]
    parser_all = build_parser()
    jobs: list[list[str]] = []
    if not args.skip_ingest:
        jobs += [["ingest", "--source", "online_retail", "--path", args.data], ["features"]]
    if args.train:
        jobs += [["train"]]
    evaluate = ["evaluate", "--split", "test"] + (["--methods", args.methods] if args.methods else [])
    jobs += [evaluate]
    timings = {}
    summary = {}
    for job in jobs:
        started = time.perf_counter()
        namespace = parser_all.parse_args([job[0], *common, *job[1:]])
        summary = run_job(job[0], namespace)
        timings[job[0]] = round(time.perf_counter() - started, 1)
    report = summary.get("report")
    table = ""
    if report:
        from seasonrec.context import JobContext
        from seasonrec.evaluation.report import methods_metrics_table

        ctx = JobContext.create(parser_and_config(args.conf, overrides), "bench")
        runs = ctx.lake.read("evaluation_runs").where(f"run_id = '{summary['run_id']}'").collect()
        rows = [r.asDict() for r in runs]
        table = methods_metrics_table(rows, list(ctx.config.evaluation.k_list))
        Path(report).with_name("methods_metrics.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(json.dumps({"seconds": timings, "report": report, "skipped": summary.get("skipped"),
                      "als_tuning": summary.get("als_tuning")}, indent=2, default=str))
    return 0


def parser_and_config(conf: str, overrides: list[str]):
    from seasonrec.config import load_config

    return load_config(conf, overrides)


if __name__ == "__main__":
    sys.exit(main())
