"""`seasonrec maintain`: keep the lake's folders to what its tables reference.

For every table registered in `seasonrec.tables` that exists in the lake (folders under the lake root, or
catalog tables in ``paths.table_namespace``):

- delete the files no version inside the retention window references (`Lake.vacuum`): files of
  overwritten versions, and files a killed or failed write moved into the table but never committed;
- with ``--compact``, rewrite each partition's small files into fewer larger ones (`Lake.compact`);

and delete the lake's ``_staging`` leftovers of writes killed before they cleaned up
(`Lake.remove_staging_leftovers`). Only files untouched for ``maintenance.retention_hours`` go, so a
job writing at the same time keeps its files; time travel reaches back that far only. A table with
nothing to remove or compact gets no commit (a no-op run leaves every version as it was).

The job module of `seasonrec maintain` (``DESCRIPTION``, ``add_arguments``, ``run``) is this one.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from typing import Any

from seasonrec import tables
from seasonrec.lake import Lake

log = logging.getLogger("seasonrec")

DESCRIPTION = ("table maintenance: remove staging leftovers and unreferenced files older than "
               "maintenance.retention_hours (vacuum), optionally compact small files")


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one table: versions before/after, files deleted, files compacted."""

    name: str
    version_before: int
    version_after: int
    files_removed: int
    files_compacted: int
    files_written: int

    def line(self) -> str:
        """One summary line, e.g. ``bronze_transactions: 3 files removed, 0 compacted (version 4 -> 6)``."""
        compacted = f"{self.files_compacted} compacted into {self.files_written}" if self.files_compacted \
            else "0 compacted"
        versions = (f"version {self.version_before}" if self.version_after == self.version_before
                    else f"version {self.version_before} -> {self.version_after}")
        return f"{self.name}: {self.files_removed} files removed, {compacted} ({versions})"


def maintain_table(lake: Lake, name: str, retention_hours: int, compact: bool = False,
                   commit_info: dict[str, str] | None = None) -> TableMaintenance:
    """Compact (when ``compact``) then vacuum one existing table; the files a compaction replaces
    are vacuumed only once they are older than the retention window."""
    before = lake.info(name).version
    rewritten = lake.compact(name, commit_info) if compact else {"files_removed": 0, "files_added": 0}
    removed = lake.vacuum(name, retention_hours, commit_info)
    return TableMaintenance(name, before, lake.info(name).version, len(removed), rewritten["files_removed"],
                            rewritten["files_added"])


def maintain_lake(lake: Lake, retention_hours: int, compact: bool = False,
                  commit_info: dict[str, str] | None = None) -> tuple[list[TableMaintenance], list[str]]:
    """`maintain_table` for every registered table that exists, then the staging cleanup.
    Returns (one result per table, the staging folders deleted)."""
    results = [maintain_table(lake, name, retention_hours, compact, commit_info)
               for name in tables.TABLES if lake.exists(name)]
    return results, lake.remove_staging_leftovers(retention_hours)


# ---------------------------------------------------------------- the `seasonrec maintain` job
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's options."""
    parser.add_argument("--compact", action="store_true",
                        help="also rewrite small files into fewer large ones (Delta OPTIMIZE)")


def run(ctx: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Maintain every table of the lake; logs one line per table and returns the job summary."""
    retention = ctx.config.maintenance.retention_hours
    with ctx.step(f"maintenance (retention {retention} h{', compact' if args.compact else ''})") as step:
        results, staging = maintain_lake(ctx.lake, retention, args.compact, ctx.commit_info())
        step.note(tables=len(results), staging_removed=len(staging))
    for result in results:
        log.info("[%s] %s", ctx.job, result.line())
    if staging:
        log.info("[%s] _staging: %d leftover folders removed", ctx.job, len(staging))
    return {
        "retention_hours": retention,
        "compact": bool(args.compact),
        "tables": {r.name: {k: v for k, v in asdict(r).items() if k != "name"} for r in results},
        "files_removed": sum(r.files_removed for r in results),
        "files_compacted": sum(r.files_compacted for r in results),
        "staging_removed": len(staging),
    }
