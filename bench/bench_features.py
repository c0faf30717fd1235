"""Throughput of ingest + features on synthetic data (for `make bench`, not a test).

    .venv/bin/python bench/bench_features.py --events 1000000 10000000 [--conf conf/local.yaml]

Prints one JSON object (keyed by size) on its last line: events/s for ingest, features and both, and the peak resident
memory of the driver (Python process and the local JVM, which holds the Spark driver).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

from memory import jvm_pid, peak_rss_mb

# Sized for 10M events on a 2-core, 24 GiB machine (measured there); `--set` overrides win.
BENCH_OVERRIDES = ["spark.driver_memory=12g", "spark.shuffle_partitions=32"]


def bench(n_events: int, conf: str, overrides: list[str]) -> dict:
    from seasonrec.cli import _default_args  # parse each job's defaults like the CLI does
    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.features import jobs as features_jobs

    with tempfile.TemporaryDirectory(prefix="seasonrec-bench-") as root:
        n_users, n_items = max(100, n_events // 50), max(50, min(50_000, n_events // 150))
        config = load_config(conf, [*BENCH_OVERRIDES, f"paths.lake_root={root}/lake",
                                    f"data.synthetic.n_events={n_events}", f"data.synthetic.n_users={n_users}",
                                    f"data.synthetic.n_items={n_items}", *overrides])
        base = argparse.Namespace(conf=conf, overrides=overrides)
        started = time.perf_counter()
        ingest = ingest_jobs.run(JobContext.create(config, "ingest"), _default_args("ingest", base))
        ingest_s = time.perf_counter() - started
        features = features_jobs.run(JobContext.create(config, "features"), _default_args("features", base))
        total_s = time.perf_counter() - started
    jvm = jvm_pid()
    return {
        "n_events": n_events, "bronze_rows": ingest["bronze_rows_total"],
        "ingest_events_per_s": round(n_events / ingest_s),
        "features_events_per_s": round(n_events / (total_s - ingest_s)),
        "events_per_s": round(n_events / total_s), "seconds": round(total_s, 1),
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_jvm_rss_mb": peak_rss_mb(jvm) if jvm else None,
        "training_examples": features["rows"]["gold_training_examples"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--conf", default="conf/local.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--quick", action="store_true", help="20k events only (smoke run)")
    args = parser.parse_args()
    sizes = [20_000] if args.quick else args.events
    results = {str(n): bench(n, args.conf, args.overrides) for n in sizes}
    print(json.dumps(results), flush=True)  # one JSON object on the last line, as bench/run_all.py expects


if __name__ == "__main__":
    main()
