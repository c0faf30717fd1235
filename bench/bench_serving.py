"""Serving load test (#15): `seasonrec serve` on loopback under a fixed-rate, fixed-duration load.

    .venv/bin/python bench/bench_serving.py --data /work/shared/data/online_retail/online_retail_2010-12_2011-09.csv.gz
    .venv/bin/python bench/bench_serving.py                 # no --data: the 4k (Online Retail) part is skipped
    .venv/bin/python bench/bench_serving.py --reuse         # reuse the models built by a previous run (--workdir)
    .venv/bin/python bench/bench_serving.py --quick         # small synthetic catalogue, short load (smoke run)

Per catalogue:
1. a registered model built the real way, one `seasonrec` CLI process per job: ``ingest`` ->
   ``features`` -> ``train`` (``--set training.epochs=2``) -> ``register`` (MLflow pyfunc + registry)
   into a scratch lake/MLflow store under ``--workdir``. ``4k``: Online Retail (``--data``, ~4k items;
   split 2011-08-01 / 2011-09-01 / 2011-10-01, snapshot 2011-09-01). ``50k``: the synthetic
   generator with 50,000 items (its Zipf exponent lowered to 0.5: sampling runs through 10,000
   inverse-CDF bins per category, so at the default 1.1 most tail items could never be drawn);
2. the real server, the command `seasonrec serve` runs (`seasonrec.serving.serve.serve_command`, the
   registered version's ``models:/<name>/<version>``, so a version that missed the quality gate is
   served too), on a free 127.0.0.1 port; waits for ``/ping`` and sends ``--prime`` requests one at
   a time (first-call costs);
3. an open-loop load (asyncio + aiohttp): one single-user request every 1/``--rate`` s for
   ``--warmup`` s (discarded) then ``--duration`` s; latency is measured from each request's
   scheduled send time (no coordinated omission). Requests: 60% known users (raw ids from bronze,
   bought before the snapshot), 40% unknown ids (with a country), 30% of both with a basket of 1-3
   items (drawn by popularity), k in {5, 10, 10, 20}, dates from the snapshot day to 8 weeks later.
   Every second, the cores used by the server, by this client and by the whole machine are sampled
   (``cpu_timeline``: the rest is other load on a shared machine). Then a closed loop:
   ``--clients`` clients sending back to back for ``--closed-duration`` s (maximum throughput);
4. the same loads against a second server started with ``--compare-env`` variables and
   ``--compare-set`` config overrides (default ``serving.workers=2``: two uvicorn worker processes,
   each with its own model; ``with_env`` in the JSON). `seasonrec serve` already runs one
   BLAS/OpenMP thread per process (`seasonrec.serving.serve.SINGLE_THREADED_ENV`);
5. JSON (stdout, one line; also ``<out-dir>/serving.json``): throughput, p50/p95/p99/max and errors
   of both loads side by side for the catalogues (``side_by_side``), p99 / the 50 ms target, server
   CPU ms per request; every request's latency and status (``<out-dir>/requests_<catalogue>.csv``);
   a histogram + CDF per catalogue (``<out-dir>/latency_<catalogue>.png``).

When the 4k catalogue misses p99 <= 50 ms at 50 requests/s (or with ``--profile always``), the
served model is loaded in a fresh process and timed one request at a time: ``model.predict`` and
MLflow's whole request path (`scoring_server.invocations`), wall and CPU ms, with default threads
and with ``--compare-env``; then wall ms per request of each stage (timers wrapped around the
served objects: parsing, user rows, encoding, user tower, candidate sources, GEMM + top-K, ranker,
LightGBM, explanations) and the cProfile top functions (``profile`` in the JSON).

Heavy: run it alone (``flock /tmp/seasonrec-spark.lock ...`` on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from summary import last_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
os.environ.setdefault("SEASONREC_SALT", "bench-salt")  # the jobs and the server pseudonymise alike
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_P99_MS = 50.0
TARGET_RATE = 50.0
SPLIT = {"train_end": "2011-08-01", "validation_end": "2011-09-01", "test_end": "2011-10-01"}
KNOWN_SHARE, BASKET_SHARE, DATE_SPAN_DAYS = 0.6, 0.3, 56
K_CHOICES = (5, 10, 10, 20)
COUNTRIES = ("United Kingdom", "Germany", "France", "Australia", "China", "United States")


@dataclass
class Catalogue:
    """One catalogue to serve: how its lake is built (extra config keys, ingest options)."""

    name: str
    overrides: list[str]
    ingest_args: list[str]
    note: str


@dataclass
class Outcome:
    """One request: kind, offset of its scheduled send from the start (s), latency from the
    scheduled send and from the actual send (ms), HTTP status (0: no answer), answer rows, error."""

    kind: str
    scheduled_s: float
    latency_ms: float = float("nan")
    service_ms: float = float("nan")
    status: int = 0
    rows: int = 0
    cold_start: bool | None = None
    error: str = ""


@dataclass
class LoadRun:
    phase: str
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    timeline: list[dict[str, float]] = field(default_factory=list)


# ---------------------------------------------------------------- building a registered model
def _paths(work: Path) -> list[str]:
    return [f"paths.{key}={work / value}" for key, value in (
        ("lake_root", "lake"), ("checkpoint_dir", "lake/_checkpoints"), ("model_dir", "lake/_models"),
        ("mlflow_dir", "lake/_mlflow"), ("report_dir", "reports"), ("petastorm_cache_dir", "lake/_petastorm_cache"))]


def catalogue_overrides(catalogue: Catalogue, work: Path, epochs: int) -> list[str]:
    return [*_paths(work), "spark.master=local[2]", "spark.log_level=ERROR", f"training.epochs={epochs}",
            "spark.conf={spark.ui.showConsoleProgress: 'false'}",
            *[f"split.{key}={value}" for key, value in SPLIT.items()], *catalogue.overrides]


def build_model(catalogue: Catalogue, work: Path, overrides: list[str], log) -> dict[str, Any]:
    """ingest -> features -> train -> register, each a `seasonrec` CLI process; returns the timings and
    the register summary (written to ``work/build.json``)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sets = [item for override in overrides for item in ("--set", override)]
    seconds: dict[str, float] = {}
    summaries: dict[str, Any] = {}
    for job, extra in (("ingest", catalogue.ingest_args), ("features", []), ("train", []), ("register", [])):
        started = time.perf_counter()
        log(f"{catalogue.name}: seasonrec {job} ...")
        with open(work / f"{job}.log", "w", encoding="utf-8") as stderr:
            proc = subprocess.run([sys.executable, "-m", "seasonrec.cli", job, "--conf", str(REPO / "conf/local.yaml"),
                                   *sets, *extra], stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO)
        seconds[job] = round(time.perf_counter() - started, 1)
        (work / f"{job}.out").write_text(proc.stdout, encoding="utf-8")
        if proc.returncode != 0:
            tail = (work / f"{job}.log").read_text(encoding="utf-8")[-3000:]
            raise RuntimeError(f"seasonrec {job} failed for {catalogue.name} (exit {proc.returncode}):\n{tail}")
        summary = last_json(proc.stdout)
        if summary is None:
            raise RuntimeError(f"seasonrec {job} printed no JSON summary for {catalogue.name}")
        summaries[job] = summary
        log(f"{catalogue.name}: seasonrec {job} done in {seconds[job]:.0f}s")
    train = summaries["train"]
    build = {"catalogue": catalogue.name, "note": catalogue.note, "overrides": overrides,
             "job_seconds": seconds, "build_seconds": round(sum(seconds.values()), 1),
             "ingest": {k: summaries["ingest"].get(k) for k in ("rows_in", "rows_good", "rows_quarantined")},
             "features": {k: v for k, v in summaries["features"].items() if not isinstance(v, dict | list)},
             "train": {k: v for k, v in train.items() if not isinstance(v, list)},
             "register": summaries["register"]}
    (work / "build.json").write_text(json.dumps(build, indent=1, default=str), encoding="utf-8")
    return build


# ---------------------------------------------------------------- request mix
def _query(table: Path, sql: str, columns: list[str]) -> dict[str, list[Any]]:
    """A SQL query over one Delta table with delta-rs (pyarrow 14 cannot read these files directly)."""
    from deltalake import DeltaTable, QueryBuilder

    result = QueryBuilder().register("t", DeltaTable(str(table))).execute(sql).read_all()
    return {c: [value.as_py() for value in result[c]] for c in columns}


@dataclass
class RequestPool:
    known_users: list[str]
    items: list[str]
    item_weights: np.ndarray
    first_day: dt.date
    last_day: dt.date


def request_pool(lake: Path, snapshot: dict[str, Any], max_users: int = 20_000) -> RequestPool:
    """Raw ids of users who bought before the snapshot day, the items sold before it (with their
    sales counts, to draw baskets by popularity) and the dates the model serves."""
    day = dt.date.fromisoformat(snapshot["day"])
    users = _query(lake / "bronze_transactions",
                   f"select distinct user_raw from t where user_raw is not null and ts < '{day} 00:00:00' "
                   f"order by user_raw limit {max_users}", ["user_raw"])["user_raw"]
    sold = _query(lake / "silver_interactions", f"select item_id, count(*) as n from t where date < '{day}' "
                  "group by item_id", ["item_id", "n"])
    weights = np.asarray(sold["n"], np.float64)
    last = min(day + dt.timedelta(days=DATE_SPAN_DAYS), dt.date.fromisoformat(str(snapshot["calendar"][1])[:10]))
    return RequestPool([str(u) for u in users], [str(i) for i in sold["item_id"]], weights / weights.sum(), day, last)


def make_requests(pool: RequestPool, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` (kind, JSON body) single-user requests of the mix in the module docstring."""
    rng = np.random.default_rng(seed)
    span = (pool.last_day - pool.first_day).days
    out = []
    for i in range(n):
        record: dict[str, Any] = {"date": (pool.first_day + dt.timedelta(days=int(rng.integers(0, span + 1))))
                                  .isoformat(), "k": int(rng.choice(K_CHOICES))}
        if rng.random() < KNOWN_SHARE and pool.known_users:
            kind = "known"
            record["user_id"] = pool.known_users[int(rng.integers(len(pool.known_users)))]
        else:
            kind = "unknown"
            record["user_id"] = f"bench-new-{seed}-{i}"
            record["country"] = str(rng.choice(COUNTRIES))
        if rng.random() < BASKET_SHARE:
            size = int(rng.integers(1, 4))
            record["recent_items"] = [pool.items[j] for j in
                                      rng.choice(len(pool.items), size=size, replace=False, p=pool.item_weights)]
            kind += "+basket"
        out.append((kind, json.dumps({"dataframe_records": [record]}).encode()))
    return out


# ---------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`seasonrec serve` (its exact command and environment) in a subprocess of its own session."""

    def __init__(self, overrides: list[str], model_uri: str, log_path: Path, extra_env: dict[str, str] | None = None):
        from seasonrec.config import load_config
        from seasonrec.serving.serve import serve_command

        self.port = free_port()
        config = load_config(REPO / "conf/local.yaml", overrides)
        args = argparse.Namespace(model_uri=model_uri, host="127.0.0.1", port=self.port)
        self.command, env = serve_command(config, args)
        env = {**env, **(extra_env or {})}
        self.workers = config.serving.workers
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.process = subprocess.Popen(self.command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=REPO)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 300.0) -> float:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log_path.read_text(encoding="utf-8")[-3000:])
            if time.perf_counter() - started > timeout:
                raise RuntimeError("server did not answer /ping:\n" + self.log_path.read_text(encoding="utf-8")[-3000:])
            time.sleep(0.5)

    def wait_idle(self, timeout: float = 180.0, busy_cores: float = 0.2) -> float:
        """Seconds until the server's processes use less than ``busy_cores`` over one second."""
        started = time.perf_counter()
        last = self.usage()["cpu_seconds"]
        while time.perf_counter() - started < timeout:
            time.sleep(1.0)
            now = self.usage()["cpu_seconds"]
            if now - last < busy_cores:
                break
            last = now
        return time.perf_counter() - started

    def usage(self) -> dict[str, float]:
        """CPU seconds and RSS of the server's process tree (mlflow CLI + uvicorn + workers)."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return {"cpu_seconds": float("nan"), "rss_mb": float("nan")}
        cpu = rss = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return {"cpu_seconds": cpu, "rss_mb": rss / 2**20, "processes": len(procs)}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()


# ---------------------------------------------------------------- load
async def _send(session: Any, url: str, kind: str, body: bytes, scheduled: float, start: float) -> Outcome:
    outcome = Outcome(kind, scheduled - start)
    sent = time.perf_counter()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
            payload = await answer.read()
            outcome.status = answer.status
        done = time.perf_counter()
        if outcome.status == 200:
            rows = json.loads(payload)["predictions"]
            outcome.rows = len(rows)
            outcome.cold_start = bool(rows and rows[0].get("cold_start"))
        else:
            outcome.error = payload[-300:].decode(errors="replace")
    except Exception as exc:  # noqa: BLE001 - a failed request is a measurement, not a crash
        done = time.perf_counter()
        outcome.error = f"{type(exc).__name__}: {exc}"[:300]
    outcome.latency_ms = (done - scheduled) * 1000
    outcome.service_ms = (done - sent) * 1000
    return outcome


async def prime(url: str, requests: list[tuple[str, bytes]], timeout: float) -> int:
    """Send ``requests`` one at a time (first-call costs: imports, caches); returns the 200s."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        outcomes = [await _send(session, url, kind, body, time.perf_counter(), 0.0) for kind, body in requests]
    return sum(o.status == 200 for o in outcomes)


def _machine_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine (all cores) since boot, from /proc/stat; steal:
    time the hypervisor gave this VM's virtual CPUs to someone else."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    steal = fields[7] if len(fields) > 7 else 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle - steal) / tick, steal / tick


async def sample_usage(server: Server, timeline: list[dict[str, float]], period: float = 1.0) -> None:
    """Every ``period`` s until cancelled: cores used by the server's processes, by this client
    process and by the whole machine (the rest is other load on a shared machine), and cores stolen
    by the hypervisor."""
    last = (time.perf_counter(), server.usage()["cpu_seconds"], time.process_time(), *_machine_seconds())
    while True:
        await asyncio.sleep(period)
        now = (time.perf_counter(), server.usage()["cpu_seconds"], time.process_time(), *_machine_seconds())
        span = now[0] - last[0]
        timeline.append({"t": round(now[0], 3), "server_cores": round((now[1] - last[1]) / span, 2),
                         "client_cores": round((now[2] - last[2]) / span, 2),
                         "machine_cores": round((now[3] - last[3]) / span, 2),
                         "steal_cores": round((now[4] - last[4]) / span, 2)})
        last = now


async def open_loop(url: str, requests: list[tuple[str, bytes]], rate: float, timeout: float,
                    server: Server | None = None) -> LoadRun:
    """One request every 1/rate s, each in its own task (the schedule never waits for answers)."""
    import aiohttp

    run = LoadRun("open")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        start = time.perf_counter() + 0.05
        sampler = asyncio.create_task(sample_usage(server, run.timeline)) if server is not None else None
        tasks = []
        for i, (kind, body) in enumerate(requests):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(session, url, kind, body, scheduled, start)))
        run.outcomes = list(await asyncio.gather(*tasks))
        run.wall_seconds = time.perf_counter() - start
        if sampler is not None:
            sampler.cancel()
        for point in run.timeline:
            point["t"] = round(point["t"] - start, 2)
    return run


async def closed_loop(url: str, requests: list[tuple[str, bytes]], clients: int, duration: float,
                      timeout: float) -> LoadRun:
    """``clients`` clients, each sending its next request as soon as the previous answer arrived."""
    import aiohttp

    run = LoadRun("closed")
    cursor = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        start = time.perf_counter()
        end = start + duration

        async def client() -> None:
            while time.perf_counter() < end:
                kind, body = requests[next(cursor) % len(requests)]
                run.outcomes.append(await _send(session, url, kind, body, time.perf_counter(), start))

        await asyncio.gather(*[client() for _ in range(clients)])
        run.wall_seconds = time.perf_counter() - start
    return run


def _timeline_by_second(run: LoadRun, warmup: float) -> dict[str, Any]:
    """Per second of the open loop: cores used by the server / the client / the machine, and the
    p99 latency of the requests scheduled in that second; plus the means over the measured part."""
    points = []
    for point in run.timeline:
        second = [o.latency_ms for o in run.outcomes
                  if o.status == 200 and point["t"] - 1 <= o.scheduled_s < point["t"]]
        points.append({**point, "p99_ms": round(float(np.percentile(second, 99)), 1) if second else None})
    measured = [p for p in points if p["t"] > warmup]

    def mean(key: str) -> float | None:
        return round(float(np.mean([p[key] for p in measured])), 2) if measured else None

    return {"measured_mean": {"server_cores": mean("server_cores"), "client_cores": mean("client_cores"),
                              "machine_cores": mean("machine_cores"), "steal_cores": mean("steal_cores"),
                              "other_cores": round(mean("machine_cores") - mean("server_cores") - mean("client_cores"),
                                                   2) if measured else None},
            "per_second": points}


def latency_summary(outcomes: list[Outcome], seconds: float, key: str = "latency_ms") -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200]
    values = np.asarray([getattr(o, key) for o in ok], np.float64)
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.status != 200:
            label = str(o.status) if o.status else o.error.split(":")[0]
            errors[label] = errors.get(label, 0) + 1
    out: dict[str, Any] = {"requests": len(outcomes), "ok": len(ok), "errors": len(outcomes) - len(ok),
                           "error_kinds": errors, "seconds": round(seconds, 2),
                           "throughput_rps": round(len(ok) / seconds, 2) if seconds else None}
    if len(values):
        for q in (50, 95, 99):
            out[f"p{q}_ms"] = round(float(np.percentile(values, q)), 2)
        out.update({"mean_ms": round(float(values.mean()), 2), "max_ms": round(float(values.max()), 2),
                    "min_ms": round(float(values.min()), 2)})
    return out


def write_outcomes(path: Path, runs: list[LoadRun]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phase", "index", "kind", "scheduled_s", "latency_ms", "service_ms", "status", "rows",
                         "cold_start", "error"])
        for run in runs:
            for i, o in enumerate(run.outcomes):
                writer.writerow([run.phase, i, o.kind, f"{o.scheduled_s:.4f}", f"{o.latency_ms:.3f}",
                                 f"{o.service_ms:.3f}", o.status, o.rows, o.cold_start, o.error])


def plot(path: Path, name: str, measured: LoadRun, closed: LoadRun | None, rate: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    open_ms = np.sort([o.latency_ms for o in measured.outcomes if o.status == 200])
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(12, 4.5))
    if len(open_ms):
        bins = np.geomspace(max(open_ms.min(), 0.5), open_ms.max() * 1.05, 60)
        hist.hist(open_ms, bins=bins, color="tab:blue")
        hist.set_xscale("log")
    hist.axvline(TARGET_P99_MS, color="red", ls="--", label=f"{TARGET_P99_MS:.0f} ms target (p99)")
    hist.set(xlabel="latency (ms, log scale)", ylabel="requests",
             title=f"{name}: open loop {rate:g} req/s, {len(open_ms)} answers")
    hist.legend()
    series = [("open loop", open_ms)]
    if closed is not None:
        series.append(("closed loop (max throughput)",
                       np.sort([o.latency_ms for o in closed.outcomes if o.status == 200])))
    for label, values in series:
        if len(values):
            cdf.plot(values, np.arange(1, len(values) + 1) / len(values), label=label)
    if len(open_ms):
        p99 = float(np.percentile(open_ms, 99))
        cdf.axvline(p99, color="tab:blue", ls=":", label=f"open-loop p99 {p99:.1f} ms")
    cdf.axvline(TARGET_P99_MS, color="red", ls="--", label="50 ms")
    cdf.axhline(0.99, color="grey", lw=0.5)
    cdf.set(xscale="log", xlabel="latency (ms, log scale)", ylabel="share of requests", title=f"{name}: latency CDF")
    cdf.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- in-process profile
PROFILE_STAGES = (  # (label, file suffix, function name); cumulative ms per request
    ("mlflow pyfunc predict (all)", "mlflow/pyfunc/__init__.py", "predict"),
    ("mlflow input schema check", "mlflow/models/utils.py", "_enforce_schema"),
    ("SeasonalRecommender.recommend", "seasonrec/serving/recommender.py", "recommend"),
    ("  parse request", "seasonrec/serving/recommender.py", "_parse"),
    ("  user row (snapshot lookup + fold)", "seasonrec/serving/recommender.py", "_user_row"),
    ("  recommend_users", "seasonrec/scoring/engine.py", "recommend_users"),
    ("    user tower (user_matrix)", "seasonrec/training/artifacts.py", "user_matrix"),
    ("    candidate sources (candidate_pairs)", "seasonrec/training/artifacts.py", "candidate_pairs"),
    ("    score_block (GEMM + top-K + ranker)", "seasonrec/core/topk.py", "score_block"),
    ("    ranker (TwoStageModel.rerank)", "seasonrec/training/artifacts.py", "rerank"),
    ("      LightGBM predict", "lightgbm/basic.py", "predict"),
    ("  explain (reasons + catalogue)", "seasonrec/serving/recommender.py", "_explain"),
    ("  recent activity lookup", "seasonrec/serving/pyfunc.py", "current"),
)


STAGES = (  # (label, owner, attribute): inclusive wall ms per request, timed by wrapping the served objects
    ("parse request", "recommender", "_parse"),
    ("user rows (snapshot lookup + fold)", "recommender", "_user_row"),
    ("recommend_users (engine)", "recommender_module", "recommend_users"),
    ("  encode user block (TwoStageModel.prepare, once per block)", "model", "encode"),
    ("  user tower (user_matrix)", "model", "user_matrix"),
    ("  candidate sources (candidate_pairs, incl. pool_inputs)", "model", "candidate_pairs"),
    ("    pool_inputs (neighbour scores over all items; once per block)", "model", "pool_inputs"),
    ("    all_pairs (7 sources' proposals; global top lists cached per date)", "artifacts_module", "all_pairs"),
    ("  score_block (GEMM + top-K, incl. the ranker callback)", "engine_module", "score_block"),
    ("    ranker (TwoStageModel.rerank: features + LightGBM)", "model", "rerank"),
    ("      LightGBM score", "reranker", "score"),
    ("explain (reasons + catalogue)", "recommender", "_explain"),
)


def _install_stage_timers(pyfunc_model: Any) -> dict[str, list[float]]:
    """Wrap the served objects' stage functions with wall-clock timers (instance attributes and the
    module names the callers look up); returns {label: [seconds, calls]}."""
    recommender = pyfunc_model.unwrap_python_model().recommender
    owners = {"recommender": recommender, "model": recommender.model,
              "reranker": getattr(recommender.model, "reranker", None),
              "recommender_module": sys.modules[type(recommender).__module__],
              "engine_module": sys.modules["seasonrec.scoring.engine"],
              "artifacts_module": sys.modules[type(recommender.model).__module__]}
    totals: dict[str, list[float]] = {}

    def timed(label: str, function: Any) -> Any:
        totals[label] = [0.0, 0]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[label][0] += time.perf_counter() - started
                totals[label][1] += 1
        return wrapper

    for label, owner, name in STAGES:
        target = owners.get(owner)
        if target is not None and hasattr(target, name):
            setattr(target, name, timed(label, getattr(target, name)))
    return totals


def _timed_calls(call, inputs: list[Any]) -> dict[str, float]:
    """Wall and CPU (this process, all threads) ms per call, and wall percentiles."""
    timings = []
    wall, cpu = time.perf_counter(), time.process_time()
    for item in inputs:
        started = time.perf_counter()
        call(item)
        timings.append((time.perf_counter() - started) * 1000)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    values = np.asarray(timings)
    return {"wall_ms_per_call": round(wall * 1000 / len(inputs), 2),
            "cpu_ms_per_call": round(cpu * 1000 / len(inputs), 2),
            "p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2)}


def _gc_pauses(model: Any, frames: list[Any]) -> dict[str, Any]:
    """What CPython's cyclic GC costs the served process: objects it tracks after the model loaded,
    one full collection (what a gen2 pass costs), the passes seen while predicting ``frames``, and
    the same after ``gc.freeze()`` (objects alive at that point are never scanned again)."""
    import gc

    passes: list[tuple[int, float]] = []
    started: dict[str, float] = {}

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            passes.append((int(info["generation"]), (time.perf_counter() - started["t"]) * 1000))

    def full_collect_ms() -> float:
        begin = time.perf_counter()
        gc.collect()
        return round((time.perf_counter() - begin) * 1000, 1)

    out: dict[str, Any] = {"tracked_objects": len(gc.get_objects()), "full_collect_ms": full_collect_ms()}
    gc.callbacks.append(watch)
    try:
        for frame in frames:
            model.predict(frame)
    finally:
        gc.callbacks.remove(watch)
    gen2 = [ms for generation, ms in passes if generation == 2]
    out.update({"requests": len(frames), "gen2_passes": len(gen2), "gen2_max_ms": round(max(gen2, default=0.0), 1),
                "gen0_gen1_passes": len(passes) - len(gen2)})
    gc.freeze()
    out["full_collect_ms_after_freeze"] = full_collect_ms()
    gc.unfreeze()
    return out


def _concurrent_predict(model: Any, frames: list[Any], threads: int = 6) -> dict[str, Any]:
    """``model.predict`` over ``frames`` from a pool of ``threads`` threads (what MLflow's server does
    through asyncio.to_thread, whose default pool has min(32, cpus + 4) threads), with and without a
    lock that lets one predict run at a time: requests/s and CPU ms per request."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def locked(frame: Any) -> Any:
        with lock:
            return model.predict(frame)

    out: dict[str, Any] = {"threads": threads}
    for label, pool_size, call in (("sequential", 1, model.predict), ("pool_no_lock", threads, model.predict),
                                   ("pool_with_lock", threads, locked)):
        wall, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(pool_size) as pool:
            list(pool.map(call, frames))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out[label] = {"requests_per_second": round(len(frames) / wall, 1),
                      "cpu_ms_per_request": round(cpu * 1000 / len(frames), 2)}
    return out


def profile_predict(model_uri: str, tracking_uri: str, bodies: list[str], with_cprofile: bool) -> dict[str, Any]:
    """Load the served model in this process; time ``model.predict`` and MLflow's whole request path
    (`scoring_server.invocations`: JSON -> DataFrame, schema check, predict, JSON answer) one request
    at a time, then (``with_cprofile``) cProfile ``model.predict``: ms per request of each stage."""
    import cProfile
    import io
    import pstats

    import mlflow
    import pandas as pd
    from mlflow.pyfunc import scoring_server

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    frames = [pd.DataFrame(json.loads(body)["dataframe_records"]) for body in bodies]
    for frame in frames[:20]:
        model.predict(frame)
    out: dict[str, Any] = {
        "requests": len(frames),
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "model_predict": _timed_calls(model.predict, frames),
        "mlflow_invocations": _timed_calls(
            lambda body: scoring_server.invocations(body, "application/json", model, schema), bodies),
        "concurrent_predict": _concurrent_predict(model, frames),
        "garbage_collector": _gc_pauses(model, frames)}
    if not with_cprofile:
        return out
    totals = _install_stage_timers(model)
    out["model_predict_with_stage_timers"] = _timed_calls(model.predict, frames)
    out["stage_ms_per_request"] = {label: {"ms": round(seconds * 1000 / len(frames), 3),
                                           "calls_per_request": round(calls / len(frames), 2)}
                                   for label, (seconds, calls) in totals.items()}
    profiler = cProfile.Profile()
    profiler.enable()
    for frame in frames:
        model.predict(frame)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stages = {}
    for label, suffix, name in PROFILE_STAGES:
        total = sum(value[3] for (file, _, func), value in stats.stats.items()  # type: ignore[attr-defined]
                    if func == name and file.replace(os.sep, "/").endswith(suffix))
        if total:
            stages[label] = round(total * 1000 / len(frames), 3)
    by_cum, by_own = io.StringIO(), io.StringIO()
    pstats.Stats(profiler, stream=by_cum).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler, stream=by_own).sort_stats("tottime").print_stats(30)
    out.update({"stage_ms_per_request_under_cprofile": stages,
                "top_cumulative": _trim(by_cum.getvalue()), "top_own_time": _trim(by_own.getvalue())})
    return out


def profile_in_subprocess(model_uri: str, tracking_uri: str, bodies: list[str], with_cprofile: bool,
                          extra_env: dict[str, str], scratch: Path) -> dict[str, Any]:
    """`profile_predict` in a fresh process (thread pools read their environment at start)."""
    job = scratch / "profile_job.json"
    job.write_text(json.dumps({"model_uri": model_uri, "tracking_uri": tracking_uri, "bodies": bodies,
                               "with_cprofile": with_cprofile}), encoding="utf-8")
    proc = subprocess.run([sys.executable, __file__, "--profile-job", str(job)], capture_output=True, text=True,
                          env={**os.environ, **extra_env}, cwd=REPO)
    job.unlink(missing_ok=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _trim(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return [line.replace(str(REPO) + "/", "") for line in lines[start:]]


# ---------------------------------------------------------------- one catalogue
def serve_and_load(label: str, overrides: list[str], model_uri: str, requests: list[tuple[str, bytes]],
                   args: argparse.Namespace, out_dir: Path, extra_env: dict[str, str], log
                   ) -> tuple[dict[str, Any], list[LoadRun]]:
    """Start the server, prime it, run the open loop (warm-up + measured) and the closed loop."""
    n_open = int(round(args.rate * (args.warmup + args.duration)))
    server = Server(overrides, model_uri, out_dir / f"server_{label}.log", extra_env)
    result: dict[str, Any] = {}
    runs: list[LoadRun] = []
    try:
        result["server"] = {"command": " ".join(server.command[1:]), "workers": server.workers,
                            "extra_env": extra_env, "startup_seconds": round(server.wait_ready(), 1)}
        url = f"{server.url}/invocations"
        primed = asyncio.run(prime(url, requests[-args.prime:], args.timeout))
        log(f"{label}: server up on port {server.port} in {result['server']['startup_seconds']}s, primed with "
            f"{primed}/{args.prime} sequential requests; open loop {args.rate:g} req/s for "
            f"{args.warmup:g}+{args.duration:g}s")
        usage_before, client_cpu = server.usage(), time.process_time()
        run = asyncio.run(open_loop(url, requests[:n_open], args.rate, args.timeout, server))
        usage_after, client_cpu = server.usage(), time.process_time() - client_cpu
        runs.append(run)
        warm = int(round(args.rate * args.warmup))
        measured = run.outcomes[warm:]
        window = max(o.scheduled_s + o.latency_ms / 1000 for o in measured) - measured[0].scheduled_s
        summary = latency_summary(measured, window)
        summary.update({
            "offered_rps": args.rate, "warmup_seconds": args.warmup, "measured_seconds": args.duration,
            "latency_from": "scheduled send time",
            "service_time_ms": {k: v for k, v in latency_summary(measured, window, "service_ms").items()
                                if k.endswith("_ms")},
            "by_kind_p99_ms": {kind: latency_summary([o for o in measured if o.kind == kind], window).get("p99_ms")
                               for kind in sorted({o.kind for o in measured})},
            "known_user_answers": sum(o.kind.startswith("known") for o in measured),
            "known_user_answers_cold_start": sum(bool(o.cold_start) for o in measured if o.kind.startswith("known")),
            "server_cpu_ms_per_request": round((usage_after["cpu_seconds"] - usage_before["cpu_seconds"]) * 1000
                                               / len(run.outcomes), 2),
            "client_cpu_ms_per_request": round(client_cpu * 1000 / len(run.outcomes), 2),
            "server_rss_mb": round(usage_after["rss_mb"], 1)})
        summary["cpu_timeline"] = _timeline_by_second(run, args.warmup)
        summary["p99_over_target"] = round(summary["p99_ms"] / TARGET_P99_MS, 3) if "p99_ms" in summary else None
        summary["target_met"] = bool(summary.get("p99_ms", float("inf")) <= TARGET_P99_MS and not summary["errors"]
                                     and args.rate >= TARGET_RATE)
        result["open_loop"] = summary
        log(f"{label}: open loop p50 {summary.get('p50_ms')} p95 {summary.get('p95_ms')} p99 {summary.get('p99_ms')} "
            f"max {summary.get('max_ms')} ms, {summary['throughput_rps']} req/s, {summary['errors']} errors, "
            f"server CPU {summary['server_cpu_ms_per_request']} ms/request")
        if args.clients:
            result["drain_seconds"] = round(server.wait_idle(), 1)  # an overloaded open loop leaves a backlog
            usage_before = server.usage()
            closed = asyncio.run(closed_loop(url, requests[n_open:], args.clients, args.closed_duration, args.timeout))
            usage_after = server.usage()
            runs.append(closed)
            closed_summary = latency_summary(closed.outcomes, closed.wall_seconds)
            closed_summary["clients"] = args.clients
            closed_summary["server_cpu_ms_per_request"] = round(
                (usage_after["cpu_seconds"] - usage_before["cpu_seconds"]) * 1000 / max(len(closed.outcomes), 1), 2)
            result["closed_loop"] = closed_summary
            log(f"{label}: closed loop ({args.clients} clients) {closed_summary['throughput_rps']} req/s, "
                f"p50 {closed_summary.get('p50_ms')} p99 {closed_summary.get('p99_ms')} ms")
        result["server"]["rss_mb_end"] = round(server.usage()["rss_mb"], 1)
    finally:
        server.stop()
    return result, runs


def run_catalogue(catalogue: Catalogue, args: argparse.Namespace, out_dir: Path, log) -> dict[str, Any]:
    work = Path(args.workdir) / catalogue.name
    overrides = catalogue_overrides(catalogue, work, args.epochs)
    build_file = work / "build.json"
    if args.reuse and build_file.exists():
        build = json.loads(build_file.read_text(encoding="utf-8"))
        build["reused"] = True
        log(f"{catalogue.name}: reusing the model built in {work}")
    else:
        build = build_model(catalogue, work, overrides, log)
    register = build["register"]
    snapshot = register["snapshot"]
    pool = request_pool(work / "lake", snapshot)
    result: dict[str, Any] = {
        "catalogue": catalogue.name, "note": catalogue.note, "build_seconds": build["build_seconds"],
        "job_seconds": build["job_seconds"], "reused_build": bool(build.get("reused")),
        "model_uri": register["model_uri"], "champion": register["champion"],
        "gate": register["gate"], "model_version": register["model_version"],
        "items_in_catalogue": snapshot["items_in_catalogue"], "sellable_items": snapshot["sellable_items"],
        "snapshot_users": snapshot["users"], "snapshot_day": snapshot["day"],
        "request_mix": {"known_share": KNOWN_SHARE, "basket_share": BASKET_SHARE, "basket_items": "1-3 by popularity",
                        "k": list(K_CHOICES), "dates": [str(pool.first_day), str(pool.last_day)],
                        "known_user_ids": len(pool.known_users), "basket_item_ids": len(pool.items)},
        "train_summary": build.get("train"),
    }
    n_open = int(round(args.rate * (args.warmup + args.duration)))
    requests = make_requests(pool, n_open + 20_000 + args.prime, seed=zlib.crc32(catalogue.name.encode()) % 1000)
    served, runs = serve_and_load(catalogue.name, overrides, register["model_uri"], requests, args, out_dir, {}, log)
    result.update(served)
    write_outcomes(out_dir / f"requests_{catalogue.name}.csv", runs)
    warm = int(round(args.rate * args.warmup))
    measured = LoadRun("open", runs[0].outcomes[warm:])
    plot(out_dir / f"latency_{catalogue.name}.png", catalogue.name, measured, runs[1] if len(runs) > 1 else None,
         args.rate)
    result["files"] = {"requests_csv": str(out_dir / f"requests_{catalogue.name}.csv"),
                       "latency_png": str(out_dir / f"latency_{catalogue.name}.png"),
                       "server_log": str(out_dir / f"server_{catalogue.name}.log")}
    compare_env = dict(item.split("=", 1) for item in args.compare_env.split())
    compare_set = args.compare_set.split()
    if compare_env or compare_set:
        label = f"{catalogue.name}_variant"
        log(f"{catalogue.name}: the same loads against a server started with {compare_env} {compare_set}")
        variant, runs = serve_and_load(label, [*overrides, *compare_set], register["model_uri"], requests, args,
                                       out_dir, compare_env, log)
        write_outcomes(out_dir / f"requests_{label}.csv", runs)
        result["with_env"] = {"env": compare_env, "set": compare_set,
                              **{k: v for k, v in variant.items() if k != "server"},
                              "server_command": variant.get("server", {}).get("command")}
    wanted = args.profile == "always" or (args.profile == "auto" and not result["open_loop"]["target_met"])
    if wanted:
        from seasonrec.config import load_config
        from seasonrec.tracking import tracking_uri

        log(f"{catalogue.name}: timing and profiling model.predict in process")
        uri = tracking_uri(load_config(REPO / "conf/local.yaml", overrides))
        bodies = [body.decode() for _, body in requests[:args.profile_requests]]
        result["profile"] = {"default_threads": profile_in_subprocess(register["model_uri"], uri, bodies, True, {},
                                                                      out_dir)}
        if compare_env:
            result["profile"]["with_env"] = profile_in_subprocess(register["model_uri"], uri, bodies, False,
                                                                  compare_env, out_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="Online Retail CSV(.gz) for the 4k catalogue (absent: skipped)")
    parser.add_argument("--catalogues", default="4k,50k", help="subset of 4k,50k")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5k synthetic items instead of 50k, 10 s loads, 1 epoch")
    parser.add_argument("--workdir", default="/tmp/seasonrec_bench_serving", help="scratch lakes + MLflow stores")
    parser.add_argument("--reuse", action="store_true", help="reuse the models a previous run built in --workdir")
    parser.add_argument("--out-dir", default=str(REPO / "reports" / "bench_serving"))
    parser.add_argument("--epochs", type=int, default=2, help="training.epochs of the two-tower model")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open-loop requests per second")
    parser.add_argument("--warmup", type=float, default=10.0, help="open-loop seconds discarded first")
    parser.add_argument("--duration", type=float, default=60.0, help="open-loop seconds measured")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop concurrent clients (0: skip)")
    parser.add_argument("--closed-duration", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    parser.add_argument("--synthetic-items", type=int, default=50_000)
    parser.add_argument("--synthetic-users", type=int, default=20_000)
    parser.add_argument("--synthetic-events", type=int, default=600_000)
    parser.add_argument("--synthetic-zipf", type=float, default=0.5, help="data.synthetic.zipf_exponent")
    parser.add_argument("--synthetic-negatives", type=int, default=1, help="features.negatives_per_positive (50k)")
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                        help="cProfile model.predict in process (auto: when a catalogue misses the target)")
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--prime", type=int, default=50, help="sequential requests before the open loop")
    parser.add_argument("--compare-env", default="",
                        help="also load a server started with these variables, e.g. \"OMP_NUM_THREADS=2\"")
    parser.add_argument("--compare-set", default="serving.workers=2",
                        help="config overrides of that second server (\"\" and no --compare-env: skip)")
    parser.add_argument("--profile-job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile_job:  # internal: profile_in_subprocess
        job = json.loads(Path(args.profile_job).read_text(encoding="utf-8"))
        print(json.dumps(profile_predict(job["model_uri"], job["tracking_uri"], job["bodies"], job["with_cprofile"])))
        return 0
    if args.quick:
        args.synthetic_items, args.synthetic_users, args.synthetic_events = 5_000, 2_000, 60_000
        args.warmup, args.duration, args.closed_duration, args.epochs = 3.0, 10.0, 5.0, 1
        args.workdir = args.workdir + "_quick"

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} bench_serving: {message}", file=sys.stderr, flush=True)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = args.synthetic_items
    label = f"{items // 1000}k" if items % 1000 == 0 else str(items)
    catalogues = {
        "4k": Catalogue("4k", ["data.source=online_retail"],
                        ["--source", "online_retail", "--path", str(Path(args.data).resolve())] if args.data else [],
                        "Online Retail, Dec 2010 - Sep 2011 (real data, ~4k items)"),
        "50k": Catalogue(label, ["data.source=synthetic", f"data.synthetic.n_items={items}",
                                 f"data.synthetic.n_users={args.synthetic_users}",
                                 f"data.synthetic.n_events={args.synthetic_events}",
                                 f"data.synthetic.zipf_exponent={args.synthetic_zipf}",
                                 f"features.negatives_per_positive={args.synthetic_negatives}",
                                 f"training.item_buckets={max(20_000, items)}",
                                 f"training.user_buckets={max(20_000, args.synthetic_users)}"],
                         ["--source", "synthetic"],
                         f"synthetic generator: {items} items, {args.synthetic_users} users, "
                         f"{args.synthetic_events} events, Zipf exponent {args.synthetic_zipf}"),
    }
    wanted = [c.strip() for c in args.catalogues.split(",") if c.strip()]
    result: dict[str, Any] = {"benchmark": "serving", "target": {"p99_ms": TARGET_P99_MS, "rate_rps": TARGET_RATE,
                                                                 "catalogue": "4k"},
                              "machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()},
                              "load": {"rate_rps": args.rate, "warmup_s": args.warmup, "duration_s": args.duration,
                                       "closed_loop_clients": args.clients, "closed_loop_s": args.closed_duration,
                                       "client": "asyncio + aiohttp, open loop (latency from scheduled send)"},
                              "quick": args.quick, "catalogues": {}}
    failed = False
    for key in wanted:
        catalogue = catalogues[key]
        if key == "4k" and not args.data:
            message = ("skipped: no --data given (the Online Retail CSV, e.g. --data "
                       "/work/shared/data/online_retail/online_retail_2010-12_2011-09.csv.gz)")
            log(f"4k catalogue {message}")
            result["catalogues"]["4k"] = {"skipped": message}
            continue
        try:
            result["catalogues"][catalogue.name] = run_catalogue(catalogue, args, out_dir, log)
        except Exception as exc:  # noqa: BLE001 - report the other catalogue anyway
            failed = True
            log(f"{catalogue.name}: failed: {exc}")
            result["catalogues"][catalogue.name] = {"error": str(exc)[-3000:]}
    side = {}
    for name, entry in result["catalogues"].items():
        if "open_loop" in entry:
            o, c = entry["open_loop"], entry.get("closed_loop", {})
            side[name] = {"items": entry["items_in_catalogue"], "open_rps": o["throughput_rps"],
                          "p50_ms": o.get("p50_ms"), "p95_ms": o.get("p95_ms"), "p99_ms": o.get("p99_ms"),
                          "max_ms": o.get("max_ms"), "errors": o["errors"], "p99_over_50ms": o["p99_over_target"],
                          "closed_loop_max_rps": c.get("throughput_rps"), "closed_loop_p99_ms": c.get("p99_ms"),
                          "server_cpu_ms_per_request": o.get("server_cpu_ms_per_request")}
            if "with_env" in entry:
                v, vc = entry["with_env"]["open_loop"], entry["with_env"].get("closed_loop", {})
                side[name]["with_env"] = {"env": entry["with_env"]["env"], "set": entry["with_env"]["set"],
                                          "p50_ms": v.get("p50_ms"),
                                          "p95_ms": v.get("p95_ms"), "p99_ms": v.get("p99_ms"),
                                          "max_ms": v.get("max_ms"), "errors": v["errors"],
                                          "p99_over_50ms": v["p99_over_target"],
                                          "closed_loop_max_rps": vc.get("throughput_rps"),
                                          "server_cpu_ms_per_request": v.get("server_cpu_ms_per_request")}
    result["side_by_side"] = side
    four = result["catalogues"].get("4k", {}).get("open_loop")
    result["target_met_4k"] = None if four is None else four["target_met"]
    result["machine"]["load_average_end"] = os.getloadavg()
    (out_dir / "serving.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(result, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
