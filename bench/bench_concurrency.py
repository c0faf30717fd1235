"""Concurrency with real job processes (issue #20's bar; for `make bench`, not a test).

    flock /tmp/seasonrec-spark.lock .venv/bin/python bench/bench_concurrency.py            # 10 repetitions
    .venv/bin/python bench/bench_concurrency.py --repetitions 3 --data online_retail.csv.gz --data-rows 5000
    .venv/bin/python bench/bench_concurrency.py --quick                                   # 2 repetitions

Bar: "2 concurrent ingests of the same file x 10 repetitions -> 0 duplicates, 0 lost rows; concurrent
first writes of a table -> both results present". `tests/test_lake.py` forces those races inside one
process; this runs them between real processes, each with its own Spark driver and delta-rs commits.

Part ``ingest``: one CSV in the Online Retail layout (``--rows`` seeded rows plus a few bad rows of
known kinds, or ``--data``, optionally cut to its first ``--data-rows`` records), ingested once into a
fresh lake by one uninterrupted `seasonrec ingest` (the reference). Then per repetition a fresh lake
and two `seasonrec ingest` processes (``python -m seasonrec.cli``, the command `make ingest` runs) on
that file, started together (even repetitions) or the second after a seeded random delay of up to
``--max-stagger`` s (odd ones), so their commits interleave differently. After both end, bronze and
quarantine are read with delta-rs (no Spark here; pyarrow 14 cannot read deltalake 1.x files, so the
query runs in delta-rs' DataFusion) and checked: each exit code 0 or one clear "lost the commit race"
line; bronze rows == distinct row hashes == the reference's rows (same hashes, same contents but for
ingested_at), quarantine likewise; each job's records balance (read = header + before --since + added +
quarantined + skipped) and the two jobs' reported additions sum to what the table holds. The log lines
"changed while merging" count the commits that really lost a race (the race was exercised, not only
possible).

Part ``first_write``: per repetition two processes (this file with ``--first-write-worker``) start
Spark, build ``--write-rows`` distinct rows each, wait for each other (a file barrier, so the two
writes overlap instead of the Spark starts), then `Lake.write(..., mode="append")` to a table that does
not exist yet (the second after a random delay in odd repetitions). Checked: both exit 0, the table
reads, each writer's rows are all there once; each worker reports when its write started and ended,
so the JSON says whether the two writes overlapped in time.

Output: one progress line per repetition (stderr), a short summary, and the JSON document (per
repetition and totals) on stdout's last line and in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from summary import last_json

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf" / "test.yaml"
BRONZE, QUARANTINE = "bronze_transactions", "quarantine"
FIRST_WRITE_TABLE = "concurrent_first_write"  # unregistered: no declaration, any schema
VOLATILE = {"ingested_at", "resolved_at", "resolved_by_run"}  # differ between runs by design
RETRIES_EXHAUSTED = "lost the commit race"  # Lake.merge's one-line error after MERGE_ATTEMPTS
MERGE_RETRY = "changed while merging"  # Lake.merge's log line when a commit lost a race and retries
TIMEOUT_S = 900
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# One bad row per kind (expected reason, line), as in tests/reliability/test_bad_rows.py: quarantine
# must be exercised too (its MERGE races like bronze's).
BAD_ROWS = [
    ("field_count_mismatch", "900002,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850.0,United Kingdom,EXTRA"),
    ("missing_item", "900005,,MYSTERY ROW,1,2010-12-01 09:00:00,1.0,12583.0,France"),
    ("missing_description", "900007,21731,,6,2010-12-01 09:00:00,1.65,17850.0,United Kingdom"),
    ("unparseable_timestamp", "900008,21731,RED TOADSTOOL,6,yesterday,1.65,17850.0,EIRE"),
    ("timestamp_out_of_range", "900010,21731,RED TOADSTOOL,6,2099-01-01 10:00:00,1.65,17850.0,United Kingdom"),
    ("zero_quantity", "900014,22752,BOXES,0,2010-12-01 09:02:00,7.65,17850.0,United Kingdom"),
    ("fractional_quantity", "900015,22752,BOXES,2.5,2010-12-01 09:02:00,7.65,17850.0,United Kingdom"),
    ("negative_price", "900020,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,12583.0,United Kingdom"),
    ("non_numeric_user", "900022,21754,BLOCK WORD,3,2010-12-01 09:09:00,5.95,abc,EIRE"),
]
DESCRIPTIONS = ["WHITE HANGING HEART T-LIGHT HOLDER", "HAND WARMER, UNION JACK", 'HEART "BIG", WHITE HOLDER',
                "ALARM CLOCK BAKELIKE PINK", "REGENCY CAKESTAND 3 TIER", "JUMBO BAG RED RETROSPOT",
                "PACK OF 72 RETROSPOT CAKE CASES", "LUNCH BAG RED RETROSPOT", "SET OF 3 CAKE TINS PANTRY DESIGN"]
COUNTRIES = ["United Kingdom"] * 8 + ["France", "Germany", "EIRE", "Spain"]


def log(message: str) -> None:
    print(f"bench_concurrency: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- input
def _csv_field(text: str) -> str:
    """RFC 4180: quote a field holding a comma or a quote, doubling the quotes."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def write_input(path: Path, rows: int, seed: int) -> dict[str, int]:
    """A seeded CSV in the Online Retail layout (the preset's timestamp format, numeric customer ids):
    ``rows`` valid lines (a few repeated verbatim: two identical lines are two sales, stored twice by
    their occurrence; some quoted descriptions; some guest checkouts; some cancellations) and one bad
    line per kind of `BAD_ROWS`, spread through the file. Returns the counts written."""
    rng = random.Random(seed)
    start = dt.datetime(2010, 12, 1, 8, 0)
    lines: list[str] = []
    for i in range(rows):
        if i and rng.random() < 0.01:
            lines.append(lines[rng.randrange(len(lines))])  # an identical line: a second real sale
            continue
        cancelled = rng.random() < 0.02
        invoice = ("C" if cancelled else "") + str(536_000 + i // 4)
        quantity = -rng.randint(1, 6) if cancelled else rng.choice([1, 2, 3, 4, 6, 12, 24, 48])
        when = start + dt.timedelta(minutes=rng.randrange(300 * 24 * 60))
        customer = "" if rng.random() < 0.1 else f"{rng.randint(12_000, 18_500)}.0"
        lines.append(",".join([invoice, f"{rng.randint(20_000, 23_999)}", _csv_field(rng.choice(DESCRIPTIONS)),
                               str(quantity), when.strftime("%Y-%m-%d %H:%M:%S"),
                               f"{rng.choice([0.42, 0.85, 1.25, 1.65, 2.55, 3.75, 4.95, 12.75])}", customer,
                               rng.choice(COUNTRIES)]))
    for _, bad in BAD_ROWS:
        lines.insert(rng.randrange(len(lines) + 1), bad)
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return {"records": len(lines), "valid_lines": rows, "bad_lines": len(BAD_ROWS)}


def slice_input(source: Path, dest: Path, records: int) -> dict[str, int]:
    """The header and the first ``records`` lines of a user's CSV (.csv or .csv.gz) into ``dest``
    (a scratch copy under the workdir, never in the repository). Cut by physical lines: a quoted
    field with a line break at the cut would be quarantined (field count) in every run alike."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as inp, open(dest, "wb") as out:
        written = -1  # the header is not a record
        for line in inp:
            if written >= records:
                break
            out.write(line)
            written += 1
    return {"records": written}


# ---------------------------------------------------------------- processes
def fresh(root: Path) -> Path:
    """``root`` emptied: every repetition starts from no lake (a previous run's workdir is reused)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def job_env() -> dict[str, str]:
    """This environment, with the worktree's lib first on PYTHONPATH (an editable install may point at
    another checkout) and Spark's workers on this interpreter, for every process started here."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(p for p in [str(REPO / "lib"), os.environ.get("PYTHONPATH", "")] if p)}


def path_settings(root: Path) -> list[str]:
    """--set arguments putting the lake and everything else a job writes under ``root``."""
    keys = ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")
    values = [f"paths.lake_root={root}/lake", *[f"paths.{key}={root}/{key}" for key in keys]]
    return [arg for value in values for arg in ("--set", value)]


def ingest_command(root: Path, data: Path, settings: list[str]) -> list[str]:
    """`seasonrec ingest` of ``data`` (Online Retail preset) into the lake under ``root``."""
    return [sys.executable, "-m", "seasonrec.cli", "ingest", "--conf", str(CONF), *path_settings(root),
            *[arg for value in settings for arg in ("--set", value)],
            "--source", "online_retail", "--path", str(data)]


class Proc:
    """A started process whose output goes to files (two Spark drivers' logs would fill pipes)."""

    def __init__(self, command: list[str], folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = folder / f"{name}.out", folder / f"{name}.err"
        self.started = time.time()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # Its own session: on a timeout its whole group (JVM, Python workers) is killed by its id.
            self.popen = subprocess.Popen(command, cwd=REPO, env=job_env(), stdout=out, stderr=err,
                                          start_new_session=True)
        self.ended: float | None = None

    def wait(self) -> int:
        try:
            code = self.popen.wait(timeout=max(1.0, TIMEOUT_S - (time.time() - self.started)))
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            code = self.popen.wait()
        self.ended = time.time()
        return code

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_pair(commands: tuple[list[str], list[str]], folder: Path, delay: float) -> tuple[Proc, Proc]:
    """Start both commands (the second ``delay`` seconds after the first) and wait for both."""
    first = Proc(commands[0], folder, "a")
    if delay:
        time.sleep(delay)
    second = Proc(commands[1], folder, "b")
    first.wait(), second.wait()
    return first, second


def error_line(stderr: str) -> str:
    """The CLI's one-line error (``seasonrec <job>: error: ...``), else the last stderr line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if ": error: " in line), lines[-1] if lines else "")[:500]


# ---------------------------------------------------------------- reading tables (delta-rs, no Spark)
def read_table(path: Path) -> tuple[int, list[str], dict[str, list[Any]]] | None:
    """(version, columns, {column: values}) of the Delta table at ``path``; every file of the latest
    version is read, so a log entry pointing at a missing file fails here. None when absent."""
    from deltalake import DeltaTable, QueryBuilder

    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path))
    columns = [field.name for field in table.schema().fields]
    quoted = ", ".join(f'"{c}"' for c in columns)
    result = QueryBuilder().register("t", table).execute(f"select {quoted} from t").read_all()
    return int(table.version()), columns, {c: result[c].to_pylist() for c in columns}


def keyed_rows(path: Path) -> tuple[Counter, Counter]:
    """(row_hash -> copies, whole rows without volatile columns -> copies) of a lake table."""
    read = read_table(path)
    if read is None:
        return Counter(), Counter()
    _, columns, values = read
    kept = [c for c in columns if c not in VOLATILE]
    n = len(values[columns[0]]) if columns else 0
    return Counter(values["row_hash"]), Counter(tuple(values[c][i] for c in kept) for i in range(n))


def compare(path: Path, reference: tuple[Counter, Counter]) -> dict[str, Any]:
    """A table against the reference run's: rows, distinct keys, duplicates (rows beyond the first of
    a key), lost keys (in the reference, not here), extra keys, and whether the rows equal it."""
    hashes, rows = keyed_rows(path)
    ref_hashes, ref_rows = reference
    return {"rows": sum(hashes.values()), "distinct_keys": len(hashes),
            "duplicates": sum(hashes.values()) - len(hashes),
            "lost": len(set(ref_hashes) - set(hashes)), "extra": len(set(hashes) - set(ref_hashes)),
            "rows_equal_reference": rows == ref_rows}


# ---------------------------------------------------------------- part 1: two ingests of one file
def _balanced(summary: dict[str, Any]) -> bool:
    return summary["records_read"] == (summary["header_lines"] + summary["rows_before_since"]
                                       + summary["bronze_rows_added"] + summary["rows_quarantined"]
                                       + summary["duplicates_skipped"])


def _job_result(proc: Proc) -> dict[str, Any]:
    """What one ingest process did: exit code, seconds, its summary's counts, races it lost."""
    summary = last_json(proc.stdout) if proc.popen.returncode == 0 else None
    out: dict[str, Any] = {"exit_code": proc.popen.returncode, "seconds": round((proc.ended or 0) - proc.started, 1),
                           "merge_retries": proc.stderr.count(MERGE_RETRY)}
    if summary is None:
        out["error"] = error_line(proc.stderr)
        return out
    out.update({key: summary.get(key) for key in ("records_read", "bronze_rows_added", "rows_quarantined",
                                                    "quarantine_rows_added", "duplicates_skipped",
                                                    "bronze_rows_total", "records_balance")})
    out["balanced"] = _balanced(summary)
    return out


def ingest_rep(rep: int, workdir: Path, data: Path, settings: list[str], delay: float,
               reference: dict[str, tuple[Counter, Counter]]) -> dict[str, Any]:
    """One repetition of two concurrent ingests of ``data`` into a fresh lake, checked."""
    root = fresh(workdir / "ingest" / f"rep{rep:02d}")
    started = time.time()
    command = ingest_command(root, data, settings)
    a, b = start_pair((command, command), root / "logs", delay)
    jobs = [_job_result(a), _job_result(b)]
    codes = [job["exit_code"] for job in jobs]
    failed = [job for job in jobs if job["exit_code"] != 0]
    outcome = ("both_exit_0" if not failed else
               "one_retries_exhausted" if len(failed) == 1 and RETRIES_EXHAUSTED in failed[0]["error"] else
               "failed")
    bronze = compare(root / "lake" / BRONZE, reference[BRONZE])
    quarantine = compare(root / "lake" / QUARANTINE, reference[QUARANTINE])
    reported = sum(job.get("bronze_rows_added") or 0 for job in jobs)
    ok = (outcome != "failed" and all(t["duplicates"] == t["lost"] == t["extra"] == 0 and t["rows_equal_reference"]
                                      for t in (bronze, quarantine))
          and all(job.get("balanced", True) for job in jobs))
    return {"rep": rep, "stagger_s": round(delay, 2), "exit_codes": codes, "outcome": outcome,
            "merge_retries": sum(job["merge_retries"] for job in jobs),
            "bronze": bronze, "quarantine": quarantine,
            "reported_bronze_added_sum": reported, "reported_added_matches_table": reported == bronze["rows"],
            "jobs": jobs, "seconds": round(time.time() - started, 1), "ok": ok}


def reference_run(workdir: Path, data: Path, settings: list[str]) -> dict[str, Any]:
    """One uninterrupted ingest of ``data`` into its own fresh lake: the rows every repetition must end with."""
    root = fresh(workdir / "ingest" / "reference")
    started = time.time()
    proc = Proc(ingest_command(root, data, settings), root / "logs", "reference")
    proc.wait()
    job = _job_result(proc)
    if job["exit_code"] != 0:
        raise SystemExit(f"bench_concurrency: the reference ingest failed: {job.get('error')} (logs: {root}/logs)")
    return {"root": root, "job": job, "seconds": round(time.time() - started, 1),
            "tables": {name: keyed_rows(root / "lake" / name) for name in (BRONZE, QUARANTINE)}}


# ---------------------------------------------------------------- part 2: two first writes of one table
def first_write_worker(root: str, writer: str, rows: int, barrier: str, delay: float) -> int:
    """One writer (run in its own process): start Spark, build ``rows`` rows tagged ``writer``, wait until
    the other writer is ready too, sleep ``delay``, append them to the table that does not exist yet
    through `Lake.write`. Prints {"writer", "version", "write_started", "write_ended"} (epoch seconds)."""
    from pyspark.sql import functions as F

    from seasonrec.config import load_config
    from seasonrec.context import JobContext

    config = load_config(CONF, [f"paths.lake_root={root}"])
    ctx = JobContext.create(config, "bench_first_write")
    df = ctx.spark.range(rows).select(F.lit(writer).alias("writer"), F.col("id").alias("i"))
    df = df.cache()
    df.count()  # computed before the barrier: what races is the commit, not the Spark start
    folder = Path(barrier)
    (folder / f"{writer}.ready").touch()
    deadline = time.time() + TIMEOUT_S
    while len(list(folder.glob("*.ready"))) < 2:
        if time.time() > deadline:
            print("first-write worker: the other writer never became ready", file=sys.stderr)
            return 2
        time.sleep(0.01)
    time.sleep(delay)
    write_started = time.time()
    version = ctx.lake.write(df, FIRST_WRITE_TABLE, mode="append")
    print(json.dumps({"writer": writer, "version": version, "write_started": write_started,
                      "write_ended": time.time()}), flush=True)
    return 0


def first_write_rep(rep: int, workdir: Path, rows: int, delay: float) -> dict[str, Any]:
    """Two processes appending distinct rows to one new table at once, checked: both exit 0, the
    table reads, each writer's rows are there exactly once."""
    root = fresh(workdir / "first_write" / f"rep{rep:02d}")
    barrier = root / "barrier"
    barrier.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def command(writer: str, wait: float) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--first-write-worker", str(root / "lake"), writer,
                str(rows), str(barrier), str(wait)]

    # The delay goes after the barrier (both Spark sessions up), where it shifts the commits.
    a, b = start_pair((command("a", 0.0), command("b", delay)), root / "logs", 0.0)
    reports = [last_json(p.stdout) if p.popen.returncode == 0 else None for p in (a, b)]
    read = read_table(root / "lake" / FIRST_WRITE_TABLE)
    present = Counter()
    if read is not None:
        _, _, values = read
        present = Counter(zip(values["writer"], values["i"], strict=True))
    expected = {(w, i) for w in ("a", "b") for i in range(rows)}
    per_writer = {w: sum(1 for key in present if key[0] == w) for w in ("a", "b")}
    overlap = None
    if all(reports):
        overlap = max(r["write_started"] for r in reports) < min(r["write_ended"] for r in reports)  # type: ignore[index]
    codes = [a.popen.returncode, b.popen.returncode]
    result = {"rep": rep, "stagger_s": round(delay, 2), "exit_codes": codes,
              "table_version": read[0] if read else None, "rows": sum(present.values()),
              "rows_per_writer": per_writer, "duplicates": sum(present.values()) - len(present),
              "lost": len(expected - set(present)), "writes_overlapped": overlap,
              "write_seconds": [round(r["write_ended"] - r["write_started"], 2) if r else None for r in reports],
              "seconds": round(time.time() - started, 1)}
    result["errors"] = [error_line(p.stderr) for p in (a, b) if p.popen.returncode != 0]
    result["ok"] = codes == [0, 0] and read is not None and result["duplicates"] == 0 and result["lost"] == 0
    return result


# ---------------------------------------------------------------- totals and main
def _ingest_totals(reps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"repetitions": len(reps), "ok": sum(r["ok"] for r in reps),
            "duplicates": sum(r["bronze"]["duplicates"] + r["quarantine"]["duplicates"] for r in reps),
            "lost_rows": sum(r["bronze"]["lost"] + r["quarantine"]["lost"] for r in reps),
            "extra_rows": sum(r["bronze"]["extra"] + r["quarantine"]["extra"] for r in reps),
            "outcomes": dict(Counter(r["outcome"] for r in reps)),
            "exit_codes": dict(Counter(str(c) for r in reps for c in r["exit_codes"])),
            "reps_with_a_merge_retry": sum(r["merge_retries"] > 0 for r in reps),
            "merge_retries": sum(r["merge_retries"] for r in reps),
            "jobs_unbalanced": sum(not j.get("balanced", True) for r in reps for j in r["jobs"]),
            "reps_reported_added_mismatch": sum(not r["reported_added_matches_table"] for r in reps),
            "seconds": round(sum(r["seconds"] for r in reps), 1)}


def _first_write_totals(reps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"repetitions": len(reps), "ok": sum(r["ok"] for r in reps),
            "duplicates": sum(r["duplicates"] for r in reps), "lost_rows": sum(r["lost"] for r in reps),
            "exit_codes": dict(Counter(str(c) for r in reps for c in r["exit_codes"])),
            "reps_writes_overlapped": sum(bool(r["writes_overlapped"]) for r in reps),
            "seconds": round(sum(r["seconds"] for r in reps), 1)}


def _delays(repetitions: int, max_stagger: float, seed: int) -> list[float]:
    """0 s in even repetitions, a seeded uniform delay up to ``max_stagger`` s in odd ones."""
    rng = random.Random(seed)
    return [0.0 if rep % 2 == 0 else rng.uniform(0.05, max_stagger) for rep in range(repetitions)]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--first-write-worker":
        root, writer, rows, barrier, delay = sys.argv[2:7]
        return first_write_worker(root, writer, int(rows), barrier, float(delay))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 repetitions (smoke run)")
    parser.add_argument("--parts", default="ingest,first_write", help="comma-separated: ingest, first_write")
    parser.add_argument("--workdir", default="/tmp/seasonrec_concurrency", help="scratch lakes and job logs")
    parser.add_argument("--data", default=None, help="a CSV(.gz) in the Online Retail layout instead of the "
                                                     "generated one (copied, or cut with --data-rows, into --workdir)")
    parser.add_argument("--data-rows", type=int, default=0, help="with --data: its first N records only (0: all)")
    parser.add_argument("--rows", type=int, default=2000, help="valid rows of the generated CSV")
    parser.add_argument("--write-rows", type=int, default=1000, help="rows per writer in the first_write part")
    parser.add_argument("--max-stagger", type=float, default=3.0, help="largest delay (s) of the second process")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config key=value for the ingests")
    parser.add_argument("--out", default=str(REPO / "reports" / "bench_concurrency" / "concurrency.json"))
    args = parser.parse_args()
    repetitions = 2 if args.quick else args.repetitions
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    document: dict[str, Any] = {"repetitions": repetitions, "workdir": str(workdir), "max_stagger_s": args.max_stagger,
                                "seed": args.seed, "cores": os.cpu_count(),
                                "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    delays = _delays(repetitions, args.max_stagger, args.seed)
    if "ingest" in parts:
        data = workdir / "input.csv"
        if args.data:
            source = Path(args.data).resolve()
            document["input"] = {"from": str(source), **slice_input(source, data, args.data_rows or 10**12)}
        else:
            document["input"] = {"generated": True, "seed": args.seed, **write_input(data, args.rows, args.seed)}
        log(f"reference: one uninterrupted ingest of {data} ...")
        reference = reference_run(workdir, data, args.overrides)
        ref_tables = reference["tables"]
        document["reference"] = {"bronze_rows": sum(ref_tables[BRONZE][0].values()),
                                 "quarantine_rows": sum(ref_tables[QUARANTINE][0].values()),
                                 "seconds": reference["seconds"], "job": reference["job"]}
        log(f"reference: {document['reference']['bronze_rows']} bronze rows, "
            f"{document['reference']['quarantine_rows']} quarantined, {reference['seconds']}s")
        reps = []
        for rep, delay in enumerate(delays):
            result = ingest_rep(rep, workdir, data, args.overrides, delay, ref_tables)
            reps.append(result)
            log(f"ingest rep {rep + 1}/{repetitions}: stagger {delay:.2f}s exit {result['exit_codes']} "
                f"bronze {result['bronze']['rows']} rows ({result['bronze']['duplicates']} dup, "
                f"{result['bronze']['lost']} lost) quarantine {result['quarantine']['rows']} "
                f"({result['quarantine']['duplicates']} dup, {result['quarantine']['lost']} lost) "
                f"retries {result['merge_retries']} {'ok' if result['ok'] else 'FAIL'} {result['seconds']}s")
        document["ingest"] = {"totals": _ingest_totals(reps), "reps": reps}
    if "first_write" in parts:
        reps = []
        for rep, delay in enumerate(delays):
            result = first_write_rep(rep, workdir, args.write_rows, delay / 10)  # commits take ~0.1-1 s
            reps.append(result)
            log(f"first_write rep {rep + 1}/{repetitions}: stagger {result['stagger_s']:.2f}s exit "
                f"{result['exit_codes']} rows {result['rows_per_writer']} ({result['duplicates']} dup, "
                f"{result['lost']} lost) overlapped {result['writes_overlapped']} "
                f"{'ok' if result['ok'] else 'FAIL'} {result['seconds']}s")
        document["first_write"] = {"totals": _first_write_totals(reps), "reps": reps}
    document["seconds"] = round(time.time() - started, 1)
    document["ok"] = all(document[p]["totals"]["ok"] == repetitions for p in ("ingest", "first_write") if p in document)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    for part in ("ingest", "first_write"):
        if part in document:
            log(f"{part}: {json.dumps(document[part]['totals'])}")
    log(f"{'PASS' if document['ok'] else 'FAIL'} in {document['seconds']}s; JSON: {out}")
    summary = {part: document[part]["totals"] for part in ("ingest", "first_write") if part in document}
    print(json.dumps({"ok": document["ok"], "out": str(out), **summary}), flush=True)  # last line: run_all.py
    return 0 if document["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
