"""Run seasonrec jobs in order in one process, on the test config with every path under one root: the
process the kill -9 tests start (and kill, with ``SEASONREC_FAULT`` set).

    python tests/reliability/run_jobs.py ROOT ingest features score maintain [--set key=value ...]

``ingest``, ``features`` and ``maintain`` are the CLI jobs (`seasonrec.cli.main`). ``score`` is the
score job's own code (`seasonrec.scoring.jobs.score_and_write`, writing ``recommendations`` for
split.validation_end) with a factors model built from the lake (`factors_model`) instead of a trained
two-tower model: training takes minutes, and what is tested here is the job's commit, not the model.
Exits with the first failing job's code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `support`

from support import REPO, make_config, path_overrides  # noqa: E402

JOBS = ("ingest", "features", "score", "maintain")


def factors_model(lake, seed: int = 11):
    """A deterministic `ALSFactorsModel` over the lake's users (gold_user_features) and items
    (silver_items): the same lake gives the same model, hence the same recommendations."""
    from seasonrec import tables
    from seasonrec.scoring.models import ALSFactorsModel

    users = sorted(r["user_id"] for r in lake.read(tables.USER_FEATURES).select("user_id").collect())
    items = sorted(r["item_id"] for r in lake.read(tables.SILVER_ITEMS).select("item_id").collect())
    rng = np.random.default_rng(seed)
    return ALSFactorsModel(np.array(users, object), rng.standard_normal((len(users), 8)).astype(np.float32),
                           np.array(items, object), rng.standard_normal((len(items), 8)).astype(np.float32),
                           model_version="factors-kill-test")


def score(root: Path, overrides: list[str]) -> int:
    """The score job's write of recommendations for split.validation_end, with `factors_model`."""
    from seasonrec.context import JobContext
    from seasonrec.scoring.jobs import score_and_write

    ctx = JobContext.create(make_config(root, *overrides), "score")
    score_and_write(ctx, factors_model(ctx.lake), ctx.config.split.validation_end)
    return 0


def main(argv: list[str]) -> int:
    """``ROOT JOB [JOB ...] [--set key=value ...]``: run the jobs in order; the first failure's code."""
    from seasonrec import cli

    root, rest = Path(argv[0]), argv[1:]
    jobs = [a for a in rest[:rest.index("--set")] if a] if "--set" in rest else rest
    overrides = [rest[i + 1] for i, a in enumerate(rest) if a == "--set"]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        print(f"unknown job(s) {unknown}; allowed: {', '.join(JOBS)}", file=sys.stderr)
        return 2
    settings = [arg for kv in [*path_overrides(root), *overrides] for arg in ("--set", kv)]
    for job in jobs:
        code = score(root, overrides) if job == "score" else cli.main(
            [job, "--conf", str(REPO / "conf" / "test.yaml"), *settings])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
