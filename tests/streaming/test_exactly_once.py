"""`seasonrec stream` as a real process: three batches of event files, a kill -9 in the middle of the
second micro-batch, a restart, and exact tables; a rerun over the same files adds nothing.

Tables are read with delta-rs SQL, so this test starts no Spark of its own next to the job's.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SALT = "test-salt"
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
UK = "United Kingdom"

# (invoice, item, quantity, timestamp, price, customer); customer "" = guest checkout.
GOOD = {
    "b1.csv": [
        ("536001", "A1", "2", "2011-11-01 10:00:00", "1.0", "17850.0"),  # '17850.0' -> user 17850
        ("536001", "A2", "1", "2011-11-01 10:00:05", "2.0", "17850.0"),
        ("536002", "B1", "3", "2011-11-01 11:00:00", "1.5", "13047"),
        ("536003", "G1", "1", "2011-11-01 12:00:00", "1.0", ""),
    ],
    "b2.csv": [
        ("536004", "A3", "1", "2011-11-02 09:00:00", "1.0", "17850"),
        ("536004", "A1", "4", "2011-11-02 09:00:10", "1.0", "17850"),  # A1 again: now its latest purchase
        ("C536005", "A2", "-1", "2011-11-02 10:00:00", "2.0", "17850"),  # cancellation: bronze, not activity
        ("536006", "C1", "2", "2011-11-02 11:00:00", "3.0", "12583"),
        ("536007", "B2", "1", "2011-11-02 12:00:00", "1.0", "13047"),
        # The same line twice in one file: two real lines (ingest numbers them), both count.
        ("536008", "B3", "1", "2011-11-02 13:00:00", "1.0", "13047"),
        ("536008", "B3", "1", "2011-11-02 13:00:00", "1.0", "13047"),
    ],
    "b3.csv": [
        ("536009", "A4", "1", "2011-11-03 08:00:00", "1.0", "17850"),
        ("536010", "D1", "5", "2011-11-03 09:00:00", "1.0", "14000"),
        ("536011", "C2", "1", "2011-11-03 10:00:00", "1.0", "12583"),
        ("536012", "G2", "2", "2011-11-03 11:00:00", "1.0", ""),
        # A re-delivered line of b1.csv: the same row hash, so ingest's rule adds it nowhere.
        ("536002", "B1", "3", "2011-11-01 11:00:00", "1.5", "13047"),
    ],
}
BAD = {  # file -> [(reason ingest gives, row)]
    "b1.csv": [("missing_item", ("536013", "", "1", "2011-11-01 13:00:00", "1.0", "17850")),
               ("unparseable_timestamp", ("536014", "E1", "1", "yesterday", "1.0", "17850"))],
    "b2.csv": [("non_numeric_quantity", ("536015", "E2", "two", "2011-11-02 14:00:00", "1.0", "13047")),
               ("non_numeric_price", ("536016", "E3", "1", "2011-11-02 14:00:00", "n/a", "13047")),
               ("negative_price", ("536017", "E4", "1", "2011-11-02 14:00:00", "-5.0", "12583"))],
    "b3.csv": [("missing_item", ("536018", "", "1", "2011-11-03 12:00:00", "1.0", "14000"))],
}
RECENT_ITEMS_MAX = 3


def _line(row: tuple[str, ...]) -> str:
    invoice, item, quantity, ts, price, customer = row
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([invoice, item, f"ITEM {item}", quantity, ts, price, customer, UK])
    return out.getvalue()


def _deliver(folder: Path, name: str) -> None:
    """Write a file the way producers must: under a hidden name (the file source skips it), then rename."""
    rows = [_line(r) for r in GOOD[name]] + [_line(r) for _, r in BAD[name]]
    hidden = folder / f".{name}.tmp"
    hidden.write_text("\n".join([",".join(HEADER), *rows]) + "\n", encoding="utf-8")
    os.replace(hidden, folder / name)


def _bronze_keys(names: list[str]) -> dict[tuple[str, int], tuple[str, ...]]:
    """The good lines as ingest keys them: (line, occurrence in its file); a key seen before is a re-delivery."""
    keys: dict[tuple[str, int], tuple[str, ...]] = {}
    for name in names:
        seen: Counter[str] = Counter()
        for row in GOOD[name]:
            seen[_line(row)] += 1
            keys.setdefault((_line(row), seen[_line(row)]), row)
    return keys


def _user_id(customer: str) -> str:
    user = customer[:-2] if customer.endswith(".0") else customer
    return hmac.new(SALT.encode(), user.encode(), hashlib.sha256).hexdigest()[:24]  # silver's pseudonym


def _expected_activity(names: list[str]) -> dict[str, tuple[int, list[str], list[dt.datetime]]]:
    """{user_id: (n_events, item_ids, ts)} by the table's contract, from the files' good purchase lines."""
    events: dict[str, list[tuple[dt.datetime, str]]] = {}
    for _invoice, item, quantity, ts, _price, customer in _bronze_keys(names).values():
        if customer and float(quantity) > 0:
            events.setdefault(_user_id(customer), []).append((dt.datetime.fromisoformat(ts), item))
    out = {}
    for user, rows in events.items():
        latest: dict[str, dt.datetime] = {}
        for ts, item in rows:
            latest[item] = max(ts, latest.get(item, ts))
        recent = sorted(latest.items(), key=lambda kv: (-kv[1].timestamp(), kv[0]))[:RECENT_ITEMS_MAX]
        out[user] = (len(rows), [item for item, _ in recent], [ts for _, ts in recent])
    return out


def _query(table: Path, sql: str) -> list[dict]:
    from deltalake import DeltaTable, QueryBuilder

    result = QueryBuilder().register("t", DeltaTable(str(table))).execute(sql).read_all()
    return [{name: result[name][i].as_py() for name in result.column_names} for i in range(result.num_rows)]


def _version(table: Path) -> int:
    from deltalake import DeltaTable

    return int(DeltaTable(str(table)).version())


def _command(root: Path, checkpoint: Path, *extra: str) -> list[str]:
    paths = [f"paths.{key}={root}/{key}" for key in
             ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    overrides = [f"paths.lake_root={root}/lake", *paths, f"streaming.input_dir={root}/incoming",
                 f"streaming.checkpoint_dir={checkpoint}", "streaming.trigger_seconds=1",
                 "streaming.max_files_per_trigger=1", f"streaming.recent_items_max={RECENT_ITEMS_MAX}"]
    return [sys.executable, "-m", "seasonrec.cli", "stream", "--conf", "conf/test.yaml",
            *[arg for kv in overrides for arg in ("--set", kv)], *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "SEASONREC_SALT": SALT, "PYTHONUNBUFFERED": "1"}


def _summary(stdout: str) -> dict:
    start = stdout.splitlines().index("{")  # run_job prints the summary as indented JSON
    return json.loads("\n".join(stdout.splitlines()[start:]))


def _wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the job ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{path} did not appear:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


def test_kill_minus_nine_mid_batch_then_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    incoming, lake, checkpoint = tmp_path / "incoming", tmp_path / "lake", tmp_path / "ck"
    bronze, quarantine, activity = lake / "bronze_transactions", lake / "quarantine", lake / "user_recent_activity"
    incoming.mkdir()
    _deliver(incoming, "b1.csv")
    log = tmp_path / "first_run.log"
    with log.open("w") as out:
        # Continuous mode; its own process group so the kill takes the JVM and Python workers too.
        proc = subprocess.Popen(_command(tmp_path, checkpoint), cwd=REPO, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(checkpoint / "commits" / "0", proc, log)  # batch 0 (b1.csv) is done
        _deliver(incoming, "b2.csv")
        # Kill right after batch 1 committed its bronze rows, before user_recent_activity follows.
        _wait_for(bronze / "_delta_log" / f"{1:020d}.json", proc, log)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not (checkpoint / "commits" / "1").exists(), "the kill came after batch 1 was complete"
    assert _version(activity) == 0, "the kill came after batch 1 updated user_recent_activity"
    before_restart = _expected_activity(["b1.csv"])
    assert {r["user_id"]: r["n_events"] for r in _query(activity, "select user_id, n_events from t")} == {
        user: n for user, (n, _, _) in before_restart.items()}

    # Restart on the same checkpoint: batch 1 runs again with the same file, then b3.csv is batch 2.
    _deliver(incoming, "b3.csv")
    restart = subprocess.run(_command(tmp_path, checkpoint, "--once"), cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr[-3000:]
    summary = _summary(restart.stdout)
    assert summary["batch_ids"] == [1, 2]
    # b2.csv's good rows were committed before the kill; only b3.csv's new lines are added now.
    assert summary["bronze_rows_added"] == len(_bronze_keys(["b1.csv", "b2.csv", "b3.csv"])) - len(
        _bronze_keys(["b1.csv", "b2.csv"]))
    assert summary["quarantine_by_reason"] == dict(sorted(Counter(r for f in ("b2.csv", "b3.csv")
                                                                   for r, _ in BAD[f]).items()))
    # The replayed batch: all of b2.csv read again, nothing added, its users (not updated before the kill) now are.
    b2_users = {_user_id(row[5]) for row in GOOD["b2.csv"] if row[5]}
    assert (f"batch 1: {len(GOOD['b2.csv']) + len(BAD['b2.csv'])} rows in, 0 bronze added, {len(BAD['b2.csv'])} "
            f"quarantined, {len(b2_users)} users updated") in restart.stderr

    every_file = ["b1.csv", "b2.csv", "b3.csv"]
    assert _query(bronze, "select count(*) as n, count(distinct row_hash) as k from t") == [
        {"n": len(_bronze_keys(every_file)), "k": len(_bronze_keys(every_file))}]
    bronze_lines = Counter((r["invoice"], r["item_raw"]) for r in _query(bronze, "select invoice, item_raw from t"))
    assert bronze_lines == Counter((row[0], row[1]) for row in _bronze_keys(every_file).values())
    assert sorted((r["reason"], r["raw_line"]) for r in _query(quarantine, "select reason, raw_line from t")) == sorted(
        (reason, _line(row)) for f in every_file for reason, row in BAD[f])
    rows = {r["user_id"]: r for r in _query(activity, "select * from t")}
    expected = _expected_activity(every_file)
    assert set(rows) == set(expected)  # guests are not users
    for user, (n_events, item_ids, ts) in expected.items():
        row = rows[user]
        assert (row["n_events"], row["item_ids"]) == (n_events, item_ids), user
        assert [t.replace(tzinfo=None) for t in row["ts"]] == ts and row["last_ts"].replace(tzinfo=None) == ts[0]
    assert rows[_user_id("17850")]["item_ids"] == ["A4", "A1", "A3"]  # A2 dropped: 4 items, max 3

    # Rerun over the same files with a fresh checkpoint: every line is known, so no table changes.
    versions = {t.name: _version(t) for t in (bronze, quarantine, activity)}
    rerun = subprocess.run(_command(tmp_path, tmp_path / "ck_fresh", "--once", "--set",
                                    "streaming.max_files_per_trigger=null"),
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = _summary(rerun.stdout)
    assert (again["batches"], again["rows_in"]) == (1, sum(len(GOOD[f]) + len(BAD[f]) for f in every_file))
    assert (again["bronze_rows_added"], again["users_updated"]) == (0, 0)
    assert {t.name: _version(t) for t in (bronze, quarantine, activity)} == versions
