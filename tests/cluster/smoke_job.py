"""spark-submit smoke job for the loopback cluster: Delta round trip through `Lake` + Horovod over 2 executors.

    spark-submit --master spark://... tests/cluster/smoke_job.py --conf conf/cluster.yaml --set paths.lake_root=...

Prints one JSON line (prefixed ``SMOKE``) that the cluster test parses.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys


def _rank_info() -> dict:
    import horovod.tensorflow as hvd

    hvd.init()
    import tensorflow as tf

    total = float(hvd.allreduce(tf.constant([float(hvd.rank() + 1)]), op=hvd.Sum).numpy()[0])
    return {"rank": hvd.rank(), "size": hvd.size(), "pid": os.getpid(), "host": socket.gethostname(),
            "allreduce_sum": total, "python": sys.executable}


def main(argv: list[str]) -> int:
    from pyspark.sql import functions as F

    from seasonrec.config import load_config
    from seasonrec.context import JobContext

    parser = argparse.ArgumentParser()
    parser.add_argument("--conf", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--horovod", type=int, default=2, help="Horovod processes (0 skips)")
    args = parser.parse_args(argv)
    ctx = JobContext.create(load_config(args.conf, args.overrides), "smoke")
    spark = ctx.spark
    df = spark.range(0, 1000, numPartitions=4).withColumn("bucket", (F.col("id") % 4).cast("string"))
    v0 = ctx.lake.write(df, "smoke", partition_by=["bucket"], commit_info=ctx.commit_info())
    v1 = ctx.lake.merge(spark.range(990, 1010).withColumn("bucket", (F.col("id") % 4).cast("string")),
                        "smoke", keys=["id"], when_matched="ignore", commit_info=ctx.commit_info())
    rows = ctx.lake.read("smoke").count()
    executor_pids = sorted(set(
        spark.sparkContext.parallelize(range(8), 8).map(lambda _: os.getppid()).collect()))
    result = {"master": spark.sparkContext.master, "engine": ctx.lake.engine, "versions": [v0, v1], "rows": rows,
              "rows_v0": ctx.lake.read("smoke", version=0).count(), "executor_parents": executor_pids,
              "timezone": spark.conf.get("spark.sql.session.timeZone")}
    if args.horovod:
        import horovod.spark

        result["horovod"] = horovod.spark.run(_rank_info, num_proc=args.horovod, start_timeout=180, verbose=0)
    print("SMOKE " + json.dumps(result), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
