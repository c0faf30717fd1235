"""Delta Lake tables for every seasonrec stage, behind one small API and two commit engines.

- ``delta-spark``: used when the Delta classes are on the JVM classpath (clusters with
  ``--packages io.delta:delta-spark_2.12``, Databricks). Spark writes and commits.
- ``delta-rs``: used otherwise (laptops, CI). Spark still computes, writes Parquet into a staging
  folder and reads tables; the ``deltalake`` package commits the files to the transaction log.
  Files are moved into the table only right before one atomic commit, so a failed or killed write
  leaves the table at its previous version (at worst with unreferenced files that ``vacuum``
  removes), and concurrent blind appends are reconciled by the Delta commit protocol.

Concurrency: ``append`` and ``overwrite`` commit on top of whatever is latest (two creators of one
table both succeed). ``merge`` is optimistic: it reads the table at a version and commits only as
the next version; when another writer got there first it recomputes against the new version (up to
``MERGE_ATTEMPTS`` times), so two jobs inserting the same new keys store them once. `Lake.merge_counted`
also returns the rows the merge's own commit inserted (the loser of such a race inserted none, though
the table grew meanwhile). ``bench/bench_concurrency.py`` races real job processes.

Either way the result is a standard Delta table that any Delta reader opens.

Tables by name (``paths.table_namespace = "catalog.schema"``; Unity Catalog on Databricks, or any
metastore a delta-spark session has): the delta-spark engine then addresses each table as
``catalog.schema.name`` instead of ``<root>/<name>`` (``saveAsTable``, ``DeltaTable.forName``, ``DESCRIBE
DETAIL`` / ``ALTER TABLE`` on the quoted identifier, time travel by reader options), managed or, with
``paths.table_location: external``, at ``<root>/<name>``; declarations, comments and properties apply as
for folders. `Lake._ref` and the helpers next to it are the one place that chooses path or name. The
delta-rs engine commits to folders and knows no catalog, so it refuses a namespace (`LakeError`). This
code path is written against the delta-spark 3.2 / Databricks APIs; the tests cannot run it (no
delta-spark JAR on the machines they run on).

Declarations (`seasonrec.tables`): a registered table is created, on both engines, with its comment as
the Delta table description, its column comments as ``{"comment": ...}`` column metadata, its NOT
NULL columns and its table properties; a full overwrite writes the declared schema again. A null in a
NOT NULL column fails the write in Spark, before anything is committed (`LakeError` naming it). An
existing table gets comments declared (or edited) since it was written before the next write or merge
(`Lake.add_missing_comments`).

Change Data Feed (``recommendations``): delta-rs commits the Parquet files Spark wrote with plain
add/remove actions and cannot write ``_change_data`` files for them. The Delta protocol lets a commit
without change files stand for its changes when it only adds files and removes whole files (readers
take added rows as inserts, removed files' rows as deletes): appends, overwrites and partition
replacements are exact. The copy-on-write MERGE update of this engine rewrites whole files and would
report unchanged rows as deleted and inserted, so it is refused on a table declaring the feed.

Fault injection (tests only): with ``SEASONREC_FAULT=<point>[:<table>][,...]`` in the environment the
process kills itself with SIGKILL at that named point of a commit (`fault_point`, `FAULT_POINTS`):
``staged`` (Spark's files written to ``_staging``, nothing moved), ``before_commit`` (files moved into
the table folder, the log not written) and ``after_commit`` (a table committed, the job's next commit
not made yet). ``tests/reliability/test_kill_points.py`` kills ingest, features and score there.

    lake = Lake(spark, "/data/lake")
    lake.write(df, "silver_interactions", partition_by=["event_month"])
    lake.merge(new_rows, "bronze_transactions", keys=["row_hash"], when_matched="ignore")
    lake.read("silver_interactions", version=3)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from seasonrec import tables
from seasonrec.config import TableLocation, split_namespace

log = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class LakeError(RuntimeError):
    """A table operation that cannot be done, phrased for the user."""


class ConcurrentWriteError(LakeError):
    """Another writer committed to the table after this operation read it; nothing was committed."""


MERGE_ATTEMPTS = 5  # a MERGE recomputed against the newer version this many times before giving up

FAULT_ENV = "SEASONREC_FAULT"
FAULT_POINTS = {
    "staged": "Spark wrote the table's new files into <lake>/_staging; nothing was moved (delta-rs engine)",
    "before_commit": "the new files are in the table folder (delta-rs) or about to be written (delta-spark); "
                     "no commit yet",
    "after_commit": "the table's data commit is done; whatever the job commits next is not",
}


def fault_point(point: str, table: str) -> None:
    """Kill this process with SIGKILL at ``point`` of a commit to ``table`` when ``$SEASONREC_FAULT``
    names it (``<point>`` for any table, ``<point>:<table>`` for one; comma-separated for several):
    a crash at a chosen place for the fault-injection tests. Does nothing when the variable is unset;
    an unknown point name raises `LakeError` (a typo must not pass for "survived the fault")."""
    spec = os.environ.get(FAULT_ENV, "").strip()
    if not spec:
        return
    for wanted in (part.strip() for part in spec.split(",") if part.strip()):
        name, _, only = wanted.partition(":")
        if name not in FAULT_POINTS:
            raise LakeError(f"{FAULT_ENV}: unknown fault point '{name}'; allowed: {', '.join(FAULT_POINTS)}")
        if name == point and only in ("", table):
            print(f"{FAULT_ENV}: kill -9 at {point} of table '{table}'", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def _delta_rs_schema(schema: StructType) -> Any:
    """A Spark schema as a delta-rs `Schema`: types through Arrow, as Spark writes the files; the
    fields' nullability and comments as in ``schema`` (Arrow drops the metadata). Other Spark metadata
    (e.g. ML attributes listing every label) stays out of the table's schema."""
    from deltalake import Schema
    from pyspark.sql.pandas.types import to_arrow_schema

    converted = json.loads(Schema.from_arrow(to_arrow_schema(schema)).to_json())
    for field, spark_field in zip(converted["fields"], schema.fields, strict=True):
        comment = (spark_field.metadata or {}).get("comment")
        field["nullable"], field["metadata"] = spark_field.nullable, {"comment": comment} if comment else {}
    return Schema.from_json(json.dumps(converted))


def declared_schema(name: str, schema: StructType) -> StructType:
    """``schema`` (of a write to table ``name``) as `seasonrec.tables` declares it: NOT NULL exactly on
    the table's ``not_null`` columns, and the declared column comments as ``{"comment": ...}`` metadata,
    the only metadata kept (a comment read from another table does not travel with its column).
    Unregistered tables: ``schema`` unchanged."""
    registered = tables.TABLES.get(name)
    if registered is None:
        return schema
    comments = registered.column_comments
    return StructType([StructField(f.name, f.dataType, f.name not in registered.not_null,
                                   {"comment": comments[f.name]} if f.name in comments else {})
                       for f in schema.fields])


_NULL_MARKER = "seasonrec: null in a NOT NULL column"


def fail_on_nulls(df: DataFrame, name: str) -> DataFrame:
    """``df`` whose computation fails (Spark's ``raise_error``, in the same pass as the write) on a null
    in a column table ``name`` declares NOT NULL; columns Spark already knows non-null are untouched.
    `_nulls_refused` turns the failure into one `LakeError` line."""
    registered = tables.TABLES.get(name)
    checked = {f.name for f in df.schema.fields if f.nullable} & set(registered.not_null if registered else ())
    if not checked:
        return df
    return df.select(*[
        F.when(F.col(f"`{c}`").isNull(), F.raise_error(F.lit(f"{_NULL_MARKER} [{name}.{c}]")))
        .otherwise(F.col(f"`{c}`")).alias(c) if c in checked else F.col(f"`{c}`") for c in df.columns])


@contextlib.contextmanager
def _nulls_refused() -> Any:
    """`fail_on_nulls`'s Spark failure (a Java stack trace) as one `LakeError` line."""
    try:
        yield
    except LakeError:
        raise
    except Exception as exc:
        found = re.search(re.escape(_NULL_MARKER) + r" \[([^\].]+)\.([^\]]+)\]", str(exc))
        if found is None:
            raise
        raise LakeError(f"table '{found[1]}': a row has a null {found[2]}, which seasonrec/tables.py declares "
                        "NOT NULL; nothing was committed") from None


def check_schema(name: str, schema: StructType) -> None:
    """Raise `LakeError` when ``schema`` does not have the columns and types `seasonrec.tables`
    declares for table ``name`` (unregistered names pass: scratch and test tables)."""
    registered = tables.TABLES.get(name)
    if registered is None:
        return
    problems = registered.differences({field.name: field.dataType.simpleString() for field in schema.fields})
    if problems:
        raise LakeError(f"table '{name}' would not match its declaration in seasonrec/tables.py: "
                        + "; ".join(problems))


def quote_identifier(part: str) -> str:
    """``part`` (a catalog, schema, table or column name) as one quoted Spark SQL identifier: in
    backticks, a backtick inside doubled, so no name can end the identifier early."""
    return "`" + part.replace("`", "``") + "`"


def table_identifier(namespace: str, name: str) -> str:
    """The quoted three-part SQL identifier of table ``name`` in ``namespace`` (``"catalog.schema"``),
    e.g. ```main`.`seasonrec`.`recommendations```; `ValueError` for a namespace of another form."""
    return ".".join(quote_identifier(part) for part in (*split_namespace(namespace), name))


def path_identifier(path: str) -> str:
    """The SQL identifier of the path-based Delta table in folder ``path``: ``delta.`<path>```."""
    return f"delta.{quote_identifier(path)}"


def _check_namespace(namespace: str, engine: str) -> None:
    """One `LakeError` line when ``namespace`` is not ``catalog.schema`` or ``engine`` cannot keep
    catalog tables (delta-rs commits to folders and knows no catalog)."""
    try:
        split_namespace(namespace)
    except ValueError as exc:
        raise LakeError(f"table namespace {namespace!r} {exc}") from None
    if engine == "delta-rs":
        raise LakeError(f"tables by name in {namespace} (paths.table_namespace) need the delta-spark engine and a "
                        "catalog (Databricks, or spark-submit with delta-spark); the delta-rs engine keeps "
                        "path-based tables only: unset paths.table_namespace to keep them under paths.lake_root")


@dataclass(frozen=True)
class TableInfo:
    """A table as `Lake.info` finds it: ``path`` is its folder, or ``catalog.schema.name`` for a catalog
    table (`Lake.path`)."""

    name: str
    path: str
    version: int
    engine: str


@dataclass(frozen=True)
class _Declared:
    """What `Lake.conform` compares with a table's declaration: its columns in schema order, its
    description and {column: comment} ("" without one)."""

    columns: list[str]
    description: str | None
    comments: dict[str, str]


def _comments_to_set(registered: tables.Table, snapshot: _Declared) -> tuple[str | None, dict[str, str]]:
    """(the table comment to set, or None; {column: comment} to set): the declared comments the table
    lacks or has otherwise; columns it does not have yet are left for after they are added."""
    columns = {c: text for c, text in registered.column_comments.items() if snapshot.comments.get(c, text) != text}
    return (registered.comment if snapshot.description != registered.comment else None), columns


@dataclass(frozen=True)
class MergeResult:
    """What one `Lake.merge_counted` committed: the table's version after it and the rows its own commit
    inserted (None when the engine does not say: an update merge on delta-rs, a delta-spark without
    MERGE metrics). A job's "rows added" must come from here, not from the table's count before and
    after: a concurrent writer's rows would count as its own (two ingests of one file both reported
    every row added)."""

    version: int
    rows_inserted: int | None


def delta_spark_available(spark: SparkSession) -> bool:
    """True when io.delta's classes are loadable and its SQL extension is configured."""
    try:
        spark._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - py4j raises its own error types
        return False
    # Databricks runtimes ship Delta built in without listing the extension in spark.sql.extensions.
    return "DATABRICKS_RUNTIME_VERSION" in os.environ or "DeltaSparkSessionExtension" in spark.conf.get(
        "spark.sql.extensions", "")


def _local_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


class Lake:
    """Named Delta tables: folders under one root (``<root>/<table name>``), or, with a ``namespace``
    ("catalog.schema", delta-spark only), catalog tables ``<catalog>.<schema>.<table name>``: managed
    (the catalog picks the storage) or, with ``table_location="external"``, at ``<root>/<table name>``.
    The root also holds the files jobs stage for Spark (`staging_folder`) either way."""

    def __init__(self, spark: SparkSession, root: str, engine: Literal["auto", "delta-spark", "delta-rs"] = "auto",
                 namespace: str | None = None, table_location: TableLocation = "managed"):
        self.spark = spark
        self.root = root.rstrip("/")
        if engine == "auto":
            engine = "delta-spark" if delta_spark_available(spark) else "delta-rs"
        self.engine = engine
        self.namespace, self.table_location = namespace, table_location
        if namespace is not None:
            _check_namespace(namespace, engine)
        if engine == "delta-rs":
            if "://" in self.root and not self.root.startswith("file://"):
                raise LakeError(f"lake root {root} is remote; the delta-rs engine needs a driver-local path. "
                                "Put delta-spark on the classpath (--packages io.delta:delta-spark_2.12:3.2.0).")
            self.root = _local_path(self.root)
            os.makedirs(self.root, exist_ok=True)

    # ---------------------------------------------------------------- where a table is
    # The only place that knows whether tables are addressed by path or by catalog name.
    @property
    def named(self) -> bool:
        """True when tables are catalog tables (``catalog.schema.name``), not folders."""
        return self.namespace is not None

    @property
    def where(self) -> str:
        """Where the tables are, for messages: ``under <root>`` or ``in <catalog.schema>``."""
        return f"in {self.namespace}" if self.named else f"under {self.root}"

    def path(self, name: str) -> str:
        """What table ``name`` is, for people and logs: ``<catalog>.<schema>.<name>`` when the lake names
        its tables, else its folder ``<root>/<name>``."""
        return f"{self.namespace}.{name}" if self.named else self._location(name)

    def _location(self, name: str) -> str:
        """The folder of a path-based (or external) table."""
        return f"{self.root}/{name}"

    def _ref(self, name: str) -> str:
        """Table ``name`` in Spark SQL: a quoted catalog identifier, or ``delta.`<folder>```."""
        return table_identifier(self.namespace, name) if self.named else path_identifier(self._location(name))

    def _delta_table(self, name: str) -> Any:
        """delta-spark's `DeltaTable` of table ``name`` (history, MERGE, vacuum, OPTIMIZE)."""
        from delta.tables import DeltaTable  # shipped with the delta-spark package/jar

        if self.named:
            return DeltaTable.forName(self.spark, self._ref(name))
        return DeltaTable.forPath(self.spark, self._location(name))

    def _spark_load(self, name: str, **options: str) -> DataFrame:
        """Table ``name`` read by delta-spark with reader ``options`` (time travel)."""
        reader = self.spark.read.format("delta").options(**options)
        return reader.table(self._ref(name)) if self.named else reader.load(self._location(name))

    def _spark_save(self, writer: Any, name: str) -> None:
        """Run the DataFrame ``writer`` (format, mode and options set) into table ``name``. By name as by
        path, Delta's overwrite keeps an existing table's schema, comments and properties unless the
        writer sets ``overwriteSchema`` (which `_spark_write` does for unregistered tables only)."""
        if not self.named:
            writer.save(self._location(name))
            return
        if self.table_location == "external":  # a table this write creates lives at <root>/<name>
            writer = writer.option("path", self._location(name))
        writer.saveAsTable(self._ref(name))

    def _spark_place(self, builder: Any, name: str) -> Any:
        """delta-spark's `DeltaTableBuilder` pointed at table ``name``: its name and/or location."""
        if self.named:
            builder = builder.tableName(self._ref(name))
        if not self.named or self.table_location == "external":
            builder = builder.location(self._location(name))
        return builder

    def _spark_exists(self, name: str) -> bool:
        if self.named:
            return bool(self.spark.catalog.tableExists(self._ref(name)))
        jvm_delta = self.spark._jvm.io.delta.tables.DeltaTable  # type: ignore[union-attr]
        return bool(jvm_delta.isDeltaTable(self.spark._jsparkSession, self._location(name)))

    # ---------------------------------------------------------------- introspection
    def exists(self, name: str) -> bool:
        """Whether the Delta table ``name`` (a ``tables`` name) has been created in this lake."""
        if self.engine == "delta-spark":
            return self._spark_exists(name)
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self._location(name))

    def version(self, name: str) -> int | None:
        """Latest committed version, or None when the table does not exist."""
        if not self.exists(name):
            return None
        if self.engine == "delta-spark":
            return int(self._delta_table(name).history(1).collect()[0]["version"])
        return self._rs_table(name).version()

    def info(self, name: str) -> TableInfo:
        """The table's name, location, latest version and engine; raises `LakeError` naming the table
        when it does not exist (so readers fail with one line, not a Delta stack trace)."""
        version = self.version(name)
        if version is None:
            raise LakeError(f"table '{name}' does not exist {self.where}; run the job that creates it first")
        return TableInfo(name, self.path(name), version, self.engine)

    def properties(self, name: str) -> dict[str, str]:
        """The table's properties (Delta ``metadata.configuration``), e.g. ``{"seasonrec.pseudonym": ...}``."""
        self.info(name)
        if self.engine == "delta-spark":
            return dict(self.spark.sql(f"DESCRIBE DETAIL {self._ref(name)}").first()["properties"] or {})
        return {k: v for k, v in self._rs_table(name).metadata().configuration.items() if v is not None}

    def set_properties(self, name: str, properties: dict[str, str],
                       commit_info: dict[str, str] | None = None) -> int:
        """Set table properties; a commit only when one of them differs. Returns the table version."""
        current = self.properties(name)
        if all(current.get(k) == v for k, v in properties.items()):
            return self.info(name).version
        if self.engine == "delta-spark":
            pairs = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in properties.items())
            self.spark.sql(f"ALTER TABLE {self._ref(name)} SET TBLPROPERTIES ({pairs})")
        else:
            from deltalake import CommitProperties

            # raise_if_not_exists=False: delta-rs otherwise accepts only the delta.* keys it knows.
            self._rs_table(name).alter.set_table_properties(
                dict(properties), raise_if_not_exists=False,
                commit_properties=CommitProperties(custom_metadata=commit_info or {}))
        return self.info(name).version

    def columns(self, name: str) -> list[str]:
        """The existing table's column names, in its schema's order."""
        return self._snapshot_of(name).columns

    def comments(self, name: str) -> tuple[str | None, dict[str, str]]:
        """The existing table's description and {column: comment} for every column ("" without one)."""
        snapshot = self._snapshot_of(name)
        return snapshot.description, snapshot.comments

    def _snapshot(self, name: str) -> _Declared | None:
        """What the declaration checks read of table ``name`` (columns, description, column comments),
        from one read of its log; None when it does not exist. Every write and merge checks the table
        against `seasonrec.tables` first: reading the log once for both checks matters on object
        stores, where each read lists and fetches the log."""
        if self.engine == "delta-spark":
            if not self.exists(name):
                return None
            description = self.spark.sql(f"DESCRIBE DETAIL {self._ref(name)}").first()["description"]
            fields = [(f.name, f.metadata or {}) for f in self._spark_load(name).schema]
        else:
            from deltalake import DeltaTable
            from deltalake.exceptions import TableNotFoundError

            try:
                table = DeltaTable(self._location(name))
            except TableNotFoundError:
                return None
            description = table.metadata().description
            fields = [(f.name, f.metadata or {}) for f in table.schema().fields]
        return _Declared([column for column, _ in fields], description,
                         {column: meta.get("comment", "") for column, meta in fields})

    def _snapshot_of(self, name: str) -> _Declared:
        snapshot = self._snapshot(name)
        if snapshot is None:
            self.info(name)  # raises the one-line "does not exist" error
        return snapshot

    def conform(self, name: str, commit_info: dict[str, str] | None = None, *, add_columns: bool = True) -> None:
        """Bring an existing registered table up to its declaration in `seasonrec.tables` before a
        write: the declared ``added_columns`` it lacks (``add_columns``; see `add_missing_columns`),
        then the comments it lacks (`add_missing_comments`). One log read when nothing is missing;
        nothing for an unregistered or absent table."""
        registered = tables.TABLES.get(name)
        snapshot = self._snapshot(name) if registered is not None else None
        if snapshot is None:
            return
        if add_columns and self._add_missing_columns(registered, snapshot, commit_info):
            snapshot = self._snapshot(name)  # the new columns may carry declared comments
        self._add_missing_comments(registered, snapshot, commit_info)

    def add_missing_columns(self, name: str, commit_info: dict[str, str] | None = None) -> list[str]:
        """Schema migration: add the columns `seasonrec.tables` lists as ``added_columns`` of table
        ``name`` that the existing table lacks, as nullable columns of their declared types, in one
        schema-only commit (older rows read them as null). Returns the added names; [] and no commit
        when none is missing, the table does not exist or is not registered. A concurrent migrator that
        added them first is not an error."""
        registered = tables.TABLES.get(name)
        snapshot = self._snapshot(name) if registered is not None and registered.added_columns else None
        return [] if snapshot is None else self._add_missing_columns(registered, snapshot, commit_info)

    def _add_missing_columns(self, registered: tables.Table, snapshot: _Declared,
                             commit_info: dict[str, str] | None) -> list[str]:
        name = registered.name
        missing = [c for c in registered.added_columns if c not in snapshot.columns]
        if not missing:
            return []
        added = ", ".join(f"`{c}` {registered.types[c]}" for c in missing)
        try:
            if self.engine == "delta-spark":
                self.spark.sql(f"ALTER TABLE {self._ref(name)} ADD COLUMNS ({added})")
            else:
                from deltalake import CommitProperties

                fields = list(_delta_rs_schema(self.spark.createDataFrame([], added).schema).fields)
                self._rs_table(name).alter.add_columns(
                    fields, commit_properties=CommitProperties(custom_metadata=commit_info or {}))
        except Exception:
            if [c for c in missing if c not in self.columns(name)]:
                raise
            return []  # another writer migrated the table meanwhile
        log.info("table '%s': added the nullable column(s) %s declared in seasonrec/tables.py", name, missing)
        return missing

    def add_missing_comments(self, name: str, commit_info: dict[str, str] | None = None) -> list[str]:
        """Give an existing registered table the comments `seasonrec.tables` declares where it lacks them
        or has others (a table created before they were declared, or a comment edited since): the
        table's description and its columns' comments. Returns what changed (``name`` for the table
        comment, then column names); [] and no commit when all match, the table does not exist or is
        not registered. One commit per change (both engines alter one thing at a time); a concurrent
        writer that set them first is not an error."""
        registered = tables.TABLES.get(name)
        snapshot = self._snapshot(name) if registered is not None else None
        return [] if snapshot is None else self._add_missing_comments(registered, snapshot, commit_info)

    def _add_missing_comments(self, registered: tables.Table, snapshot: _Declared,
                              commit_info: dict[str, str] | None) -> list[str]:
        name = registered.name
        table_comment, columns = _comments_to_set(registered, snapshot)
        if table_comment is None and not columns:
            return []
        try:
            self._set_comments(name, table_comment, columns, commit_info)
        except Exception:
            again = self._snapshot(name)
            if again is None or _comments_to_set(registered, again) != (None, {}):
                raise
            return []  # another writer set them meanwhile
        changed = [name] * (table_comment is not None) + list(columns)
        log.info("table '%s': comments from seasonrec/tables.py set on %s", name, changed)
        return changed

    def _set_comments(self, name: str, table_comment: str | None, columns: dict[str, str],
                      commit_info: dict[str, str] | None) -> None:
        if self.engine == "delta-spark":
            ref = self._ref(name)
            if table_comment is not None:  # Delta takes a 'comment' property as the table's description
                self.spark.sql(f"ALTER TABLE {ref} SET TBLPROPERTIES ('comment' = {_sql_string(table_comment)})")
            for column, text in columns.items():
                self.spark.sql(f"ALTER TABLE {ref} ALTER COLUMN {quote_identifier(column)} COMMENT "
                               f"{_sql_string(text)}")
            return
        from deltalake import CommitProperties

        alter, props = self._rs_table(name).alter, CommitProperties(custom_metadata=commit_info or {})
        if table_comment is not None:
            alter.set_table_description(table_comment, commit_properties=props)
        for column, text in columns.items():
            alter.set_column_metadata(column, {"comment": text}, commit_properties=props)

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first, as dicts (``version``, ``timestamp``, ``operation``,
        ``operationParameters``, ...); ``limit``: the newest ``limit`` commits only.

        Example: ``lake.history(tables.DEMAND_FORECAST, 1)[0]["version"]``.
        """
        self.info(name)
        if self.engine == "delta-spark":
            rows = self._delta_table(name).history(limit).collect()
            return [row.asDict(recursive=True) for row in rows]
        return self._rs_table(name).history(limit)

    # ---------------------------------------------------------------- reads
    def read(self, name: str, version: int | None = None, timestamp: str | datetime | None = None) -> DataFrame:
        """The table as a Spark DataFrame: latest, or as of a version or timestamp (time travel)."""
        self.info(name)
        if self.engine == "delta-spark":
            if version is not None:
                return self._spark_load(name, versionAsOf=str(version))
            return self._spark_load(name, **({"timestampAsOf": str(timestamp)} if timestamp is not None else {}))
        table = self._rs_table(name, version)
        if timestamp is not None:
            table.load_as_version(timestamp)
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        files = table.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        df = self.spark.read.schema(schema).option("basePath", self._location(name)).parquet(*files)
        return df.select(*[F.col(f"`{f}`") for f in schema.fieldNames()])

    # ---------------------------------------------------------------- writes
    def write(self, df: DataFrame, name: str, mode: WriteMode = "overwrite", partition_by: list[str] | None = None,
              replace_partitions: bool = False, commit_info: dict[str, str] | None = None,
              create_only: bool = False, properties: dict[str, str] | None = None) -> int:
        """Create/overwrite or append; ``replace_partitions`` overwrites only the partitions present in ``df``.

        Two jobs creating the same table at once both succeed: the second commits its overwrite or
        append on top of the first's table. ``create_only``: create the table or raise
        `ConcurrentWriteError` when it exists (nothing committed). ``properties``: table properties
        the written data satisfies (`properties`), set by a commit right after the data's when they
        differ (never before it: a crash in between leaves new data with the old properties, which
        readers of the property refuse, never old data with new ones). A registered table's declared
        properties are always among them, so a table created before they were declared gets them on its
        next write. A null in a column declared NOT NULL raises `LakeError`. Returns the latest version.
        """
        if mode not in ("overwrite", "append"):
            raise LakeError(f"write mode '{mode}' is not supported; allowed: overwrite, append")
        check_schema(name, df.schema)
        registered = tables.TABLES.get(name)
        partition_by = list(partition_by or (registered.partition_by if registered else []))
        properties = {**(registered.properties if registered else {}), **(properties or {})}
        # Rows added to an older table: give it the new columns first (so do delta-spark overwrites,
        # which keep a registered table's declared schema).
        self.conform(name, commit_info,
                     add_columns=mode == "append" or replace_partitions or self.engine == "delta-spark")
        df = fail_on_nulls(df, name)
        with _nulls_refused():
            if self.engine == "delta-spark":
                version = self._spark_write(df, name, mode, partition_by, replace_partitions, commit_info, create_only)
            else:
                version, _ = self._rs_commit(df, name, mode, partition_by, replace_partitions, commit_info,
                                             read_version=-1 if create_only else None)
        return self.set_properties(name, properties, commit_info) if properties else version

    def merge(self, df: DataFrame, name: str, keys: list[str], when_matched: Literal["update", "ignore"] = "update",
              partition_by: list[str] | None = None, commit_info: dict[str, str] | None = None) -> int:
        """MERGE ``df`` into the table on ``keys``: insert new keys; update (or keep) matched rows.

        Creates the table on first use; an existing table first gets the columns declared since it was
        written (`add_missing_columns`). Duplicate keys inside ``df`` are collapsed, so re-running a job
        with the same input never adds rows. Returns the latest version (`merge_counted` also says how
        many rows this merge inserted).
        """
        return self.merge_counted(df, name, keys, when_matched, partition_by, commit_info).version

    def merge_counted(self, df: DataFrame, name: str, keys: list[str],
                      when_matched: Literal["update", "ignore"] = "update", partition_by: list[str] | None = None,
                      commit_info: dict[str, str] | None = None) -> MergeResult:
        """`merge`, returning the version and the rows this merge's own commit inserted (`MergeResult`)."""
        if when_matched not in ("update", "ignore"):
            raise LakeError(f"when_matched '{when_matched}' is not supported; allowed: update, ignore")
        registered = tables.TABLES.get(name)
        if when_matched == "update" and self.engine == "delta-rs" and registered and (
                registered.properties.items() >= tables.CHANGE_DATA_FEED.items()):
            raise LakeError(f"table '{name}' declares Change Data Feed, which the delta-rs engine's copy-on-write "
                            "MERGE update cannot record (see seasonrec.lake); overwrite its partitions instead")
        self.conform(name, commit_info)
        source = fail_on_nulls(df.dropDuplicates(keys), name)
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                with _nulls_refused():
                    return self._merge_once(source, name, keys, when_matched, partition_by, commit_info)
            except ConcurrentWriteError:
                if attempt == MERGE_ATTEMPTS:
                    raise LakeError(f"table '{name}': MERGE lost the commit race {MERGE_ATTEMPTS} times to "
                                    "concurrent writers; nothing was committed, rerun the job") from None
                log.info("table '%s' changed while merging (attempt %d); merging again", name, attempt)
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def _merge_once(self, source: DataFrame, name: str, keys: list[str], when_matched: str,
                    partition_by: list[str] | None, commit_info: dict[str, str] | None) -> MergeResult:
        """One optimistic MERGE: read the table at a version, commit only on top of that version
        (else `ConcurrentWriteError`: the caller recomputes against the newer one). Without the check,
        two jobs inserting the same new keys would both see them absent and both append them."""
        read_version = self.version(name)
        if read_version is None:  # create it; a concurrent creator wins and this attempt merges again
            version = self.write(source, name, "overwrite", partition_by, commit_info=commit_info, create_only=True)
            return MergeResult(version, source.count())  # the table is ours: every (deduplicated) row
        if self.engine == "delta-spark":  # Delta's own optimistic concurrency: conflicts raise, then retry
            condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            builder = self._delta_table(name).alias("t").merge(source.alias("s"), condition)
            if when_matched == "update":
                builder = builder.whenMatchedUpdateAll()
            fault_point("before_commit", name)
            with _concurrent_errors(name):
                metrics = builder.whenNotMatchedInsertAll().execute()
            fault_point("after_commit", name)
            return MergeResult(self.version(name), _inserted_rows(metrics))  # type: ignore[arg-type]
        target = self.read(name, version=read_version)
        source = source.select(*target.columns)
        partitions = self._rs_partition_by(name)
        if when_matched == "ignore":
            new_rows = source.join(target.select(*keys), on=keys, how="left_anti")
            version, inserted = self._rs_commit(new_rows, name, "append", partitions, False, commit_info,
                                                read_version=read_version)
            return MergeResult(version, inserted)
        # Copy-on-write MERGE computed by Spark: rewrite only the files holding matched keys.
        with_file = target.withColumn("_file", F.input_file_name())
        matched = with_file.join(source.select(*keys), on=keys).select("_file").distinct()
        touched = [row["_file"] for row in matched.collect()]
        kept = with_file.where(F.col("_file").isin(touched)).drop("_file").join(source.select(*keys), keys, "left_anti")
        rewritten = kept.select(*target.columns).unionByName(source)
        version, _ = self._rs_commit(rewritten, name, "append", partitions, False, commit_info,
                                     remove_files=touched, read_version=read_version)
        return MergeResult(version, None)  # the rewritten files hold kept and updated rows too

    def vacuum(self, name: str, retention_hours: int = 168, commit_info: dict[str, str] | None = None) -> list[str]:
        """Delete the table's data files that no version newer than ``retention_hours`` references:
        files of overwritten versions, and files never committed (a killed or failed write) whose
        modification time is older than the window. Returns the deleted paths; when there is nothing
        to delete, nothing is deleted and no commit is written (both engines log a vacuum as commits)."""
        self.info(name)
        if self.engine == "delta-spark":
            check = "spark.databricks.delta.retentionDurationCheck.enabled"
            previous = self.spark.conf.get(check, "true")
            self.spark.conf.set(check, "false")  # the caller's retention is the rule (0 in tests)
            try:
                doomed = [str(row[0]) for row in self.spark.sql(
                    f"VACUUM {self._ref(name)} RETAIN {int(retention_hours)} HOURS DRY RUN").collect()]
                if doomed:
                    self._delta_table(name).vacuum(float(retention_hours))
            finally:
                self.spark.conf.set(check, previous)
            return doomed
        from deltalake import CommitProperties

        table = self._rs_table(name)
        options = {"retention_hours": retention_hours, "enforce_retention_duration": False, "full": True}
        # delta-rs lists the files of expired removes again on every run until a checkpoint forgets
        # them, deleted or not: only files still on disk count (else every rerun would commit).
        doomed = [p for p in table.vacuum(dry_run=True, **options)
                  if any(os.path.exists(os.path.join(self._location(name), c)) for c in (p, unquote(p)))]
        if not doomed:
            return []
        table.vacuum(dry_run=False, commit_properties=CommitProperties(custom_metadata=commit_info or {}), **options)
        return doomed

    def compact(self, name: str, commit_info: dict[str, str] | None = None) -> dict[str, int]:
        """Rewrite the small files of each partition into fewer, larger ones (Delta OPTIMIZE; the rows
        and the table's data do not change). Returns {"files_removed", "files_added"}; when no
        partition has more than one small file nothing is rewritten and no commit is written."""
        self.info(name)
        if self.engine == "delta-spark":
            before = self.version(name)
            metrics = self._delta_table(name).optimize().executeCompaction().collect()
            if self.version(name) == before or not metrics:
                return {"files_removed": 0, "files_added": 0}
            row = metrics[0]["metrics"]
            return {"files_removed": int(row["numFilesRemoved"]), "files_added": int(row["numFilesAdded"])}
        from deltalake import CommitProperties

        metrics = self._rs_table(name).optimize.compact(
            commit_properties=CommitProperties(custom_metadata=commit_info or {}))
        return {"files_removed": int(metrics["numFilesRemoved"]), "files_added": int(metrics["numFilesAdded"])}

    @contextlib.contextmanager
    def staging_folder(self, purpose: str) -> Iterator[str]:
        """A new folder ``<root>/_staging/<purpose>-<id>`` for files a job writes on the driver before
        Spark reads them (the CSV copy of an .xlsx workbook), removed when the block ends; under the lake
        root so that cluster executors see it too, and so that one a killed process leaves behind is
        removed by `remove_staging_leftovers`. Yields the folder's path; `LakeError` when the root is
        not a driver-local (or mounted) path."""
        root = _local_path(self.root)
        if urlparse(root).scheme:
            raise LakeError(f"lake root {self.root} is remote: staging {purpose} files needs a driver-local or "
                            "mounted lake root (e.g. /Volumes/... on Databricks)")
        folder = os.path.join(root, "_staging", f"{purpose}-{uuid.uuid4().hex}")
        os.makedirs(folder)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def remove_staging_leftovers(self, retention_hours: int = 168) -> list[str]:
        """Delete the staging folders (``<root>/_staging/<table or purpose>-<id>``: Parquet of delta-rs
        writes, `staging_folder`s) of jobs that died before cleaning up (kill -9), when nothing in them
        changed for ``retention_hours``: a write in progress keeps its folder fresh. Returns the deleted
        folders (none under a remote root)."""
        staging = f"{_local_path(self.root)}/_staging"
        if urlparse(staging).scheme or not os.path.isdir(staging):
            return []
        cutoff = time.time() - retention_hours * 3600
        removed = []
        for entry in sorted(os.listdir(staging)):
            folder = os.path.join(staging, entry)
            if _newest_mtime(folder) <= cutoff:
                if os.path.isdir(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(folder)
                removed.append(folder)
        return removed

    # ---------------------------------------------------------------- delta-spark engine
    def _spark_write(self, df: DataFrame, name: str, mode: WriteMode, partition_by: list[str],
                     replace_partitions: bool, commit_info: dict[str, str] | None, create_only: bool) -> int:
        """Write ``df`` with delta-spark. A registered table is first created from its declaration
        (`_spark_create`) and keeps that schema on overwrites: Delta's DataFrame writer would make every
        column nullable and drop the comments. Returns the latest version."""
        registered = name in tables.TABLES
        if registered and (create_only or not self.exists(name)):
            self._spark_create(name, df.schema, partition_by, create_only)
            create_only = False  # the table exists now, empty: the data is its next commit
        writer = df.write.format("delta").mode("error" if create_only else mode).partitionBy(*partition_by)
        if mode == "overwrite" and replace_partitions:
            writer = writer.option("partitionOverwriteMode", "dynamic")
        elif mode == "overwrite" and not registered:
            writer = writer.option("overwriteSchema", "true")
        if commit_info:
            writer = writer.option("userMetadata", json.dumps(commit_info))
        fault_point("before_commit", name)
        with _concurrent_errors(name, also=("already exists",)) if create_only else contextlib.nullcontext():
            self._spark_save(writer, name)
        fault_point("after_commit", name)
        return self.version(name)  # type: ignore[return-value]

    def _spark_create(self, name: str, schema: StructType, partition_by: list[str], create_only: bool) -> None:
        """Create the registered table ``name`` (delta-spark, empty): ``schema`` as declared (NOT NULL
        columns, column comments), partitioning, table comment and properties. ``create_only``: raise
        `ConcurrentWriteError` when the table exists; else an existing table is left as it is."""
        from delta.tables import DeltaTable

        registered = tables.spec(name)
        builder = (DeltaTable.create if create_only else DeltaTable.createIfNotExists)(self.spark)
        builder = self._spark_place(builder, name).addColumns(declared_schema(name, schema)).comment(registered.comment)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        for key, value in registered.properties.items():
            builder = builder.property(key, value)
        with _concurrent_errors(name, also=("already exists",)) if create_only else contextlib.nullcontext():
            builder.execute()

    # ---------------------------------------------------------------- delta-rs engine
    def _rs_table(self, name: str, version: int | None = None) -> Any:
        from deltalake import DeltaTable

        return DeltaTable(self._location(name), version=version)

    def _rs_partition_by(self, name: str) -> list[str]:
        return list(self._rs_table(name).metadata().partition_columns)

    def _rs_commit(self, df: DataFrame, name: str, mode: WriteMode, partition_by: list[str],
                   replace_partitions: bool, commit_info: dict[str, str] | None,
                   remove_files: list[str] | None = None, read_version: int | None = None) -> tuple[int, int]:
        """Stage ``df``'s files and commit them; returns (the latest version, the rows in the committed
        files). ``read_version``: the version the files were computed from; the commit must be the next
        one (else `ConcurrentWriteError`, the staged files deleted); -1 means "the table must not exist
        yet". None: commit on top of whatever is latest."""
        from deltalake import CommitProperties
        from deltalake.exceptions import CommitFailedError, DeltaError

        table_path = self._location(name)
        schema = _delta_rs_schema(declared_schema(name, df.schema))
        exists = self.exists(name)
        if exists and read_version == -1:
            raise ConcurrentWriteError(f"table '{name}' was created by another writer")
        if exists and (mode == "append" or replace_partitions):
            existing = self._rs_partition_by(name)
            if partition_by and partition_by != existing:
                raise LakeError(f"table '{name}' is partitioned by {existing}, not {partition_by}")
            partition_by = existing
        adds = self._rs_stage_files(df, table_path, partition_by)
        fault_point("before_commit", name)
        props = CommitProperties(custom_metadata={"engineInfo.seasonrec": "spark+delta-rs", **(commit_info or {})},
                                 max_commit_retries=0 if read_version is not None else None)
        try:
            version = None
            if not exists:
                try:
                    version = self._rs_create(table_path, name, schema, adds, partition_by, props)
                except DeltaError as exc:
                    if "already exists" not in str(exc) or read_version is not None:
                        raise
                    # Created by a concurrent job since `exists`: commit on top of its table instead.
            if version is None:
                version = self._rs_commit_actions(name, schema, adds, mode, partition_by, replace_partitions, props,
                                                  remove_files or [], read_version)
        except (CommitFailedError, DeltaError) as exc:
            if read_version is None or not _is_conflict(exc):
                raise
            for add in adds:  # never referenced by a commit: delete rather than leave them to vacuum
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(table_path, add.path))
            raise ConcurrentWriteError(f"table '{name}' changed since version {read_version}: {exc}") from exc
        fault_point("after_commit", name)
        return version, sum(json.loads(add.stats)["numRecords"] for add in adds)

    @staticmethod
    def _rs_create(table_path: str, name: str, schema: Any, adds: list[Any], partition_by: list[str],
                   props: Any) -> int:
        from deltalake.transaction import create_table_with_add_actions

        registered = tables.TABLES.get(name)
        create_table_with_add_actions(table_path, schema, adds, mode="error", partition_by=partition_by,
                                      name=name, description=registered.comment if registered else None,
                                      configuration=dict(registered.properties) if registered else None,
                                      commit_properties=props)
        return 0

    def _rs_commit_actions(self, name: str, schema: Any, adds: list[Any], mode: WriteMode, partition_by: list[str],
                           replace_partitions: bool, props: Any, remove_files: list[str],
                           read_version: int | None) -> int:
        table_path = self._location(name)
        table = self._rs_table(name, read_version if read_version is not None and read_version >= 0 else None)
        now_ms = int(time.time() * 1000)
        if mode == "overwrite" and not replace_partitions:
            table.create_write_transaction(adds, "overwrite", schema, partition_by, commit_properties=props)
            return self.version(name)  # type: ignore[return-value]
        removes: list[Any] = []
        if mode == "overwrite":  # dynamic partition overwrite: drop the partitions the new data covers
            if not partition_by:
                raise LakeError(f"replace_partitions on '{name}' needs a partitioned table")
            covered = {tuple(sorted(a.partition_values.items())) for a in adds}
            # One OR-of-ANDs predicate over partition values ('' matches a null partition).
            predicate = [[(k, "=", "" if v is None else v) for k, v in values] for values in covered]
            removes += [_remove_action(table_path, uri, now_ms)
                        for uri in (table.file_uris(file_pruning_predicate=predicate) if predicate else [])]
        removes += [_remove_action(table_path, uri, now_ms) for uri in remove_files]
        table.create_write_transaction(adds + removes, "append", schema, partition_by, commit_properties=props)
        return self.version(name)  # type: ignore[return-value]

    def _rs_stage_files(self, df: DataFrame, table_path: str, partition_by: list[str]) -> list[Any]:
        """Let Spark write Parquet into staging, then move the files into the table folder.

        Nothing references the moved files until the commit, so an exception anywhere before it
        leaves readers on the previous version.
        """
        import pyarrow.parquet as pq
        from deltalake.transaction import AddAction

        staging = f"{self.root}/_staging/{os.path.basename(table_path)}-{uuid.uuid4().hex}"
        try:
            df.write.mode("error").partitionBy(*partition_by).parquet(staging)
            fault_point("staged", os.path.basename(table_path))
            adds = []
            for folder, _, files in os.walk(staging):
                for file_name in sorted(files):
                    if not file_name.endswith(".parquet") or file_name.startswith((".", "_")):
                        continue
                    rel_dir = os.path.relpath(folder, staging)
                    rel_dir = "" if rel_dir == "." else rel_dir
                    rel_path = os.path.join(rel_dir, file_name)
                    destination = os.path.join(table_path, rel_path)
                    os.makedirs(os.path.dirname(destination), exist_ok=True)
                    num_records = pq.ParquetFile(os.path.join(folder, file_name)).metadata.num_rows
                    os.replace(os.path.join(folder, file_name), destination)
                    adds.append(AddAction(
                        path=rel_path.replace(os.sep, "/"),
                        size=os.path.getsize(destination),
                        partition_values=_partition_values(rel_dir),
                        modification_time=int(os.path.getmtime(destination) * 1000),
                        data_change=True,
                        stats=json.dumps({"numRecords": num_records}),
                    ))
            return adds
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _inserted_rows(metrics: Any) -> int | None:
    """``num_inserted_rows`` of the DataFrame delta-spark's MERGE ``execute()`` returns (Delta 3+);
    None when it returns nothing (older Delta)."""
    if not isinstance(metrics, DataFrame) or "num_inserted_rows" not in metrics.columns:
        return None
    row = metrics.first()
    return None if row is None else int(row["num_inserted_rows"])


def _is_conflict(exc: BaseException) -> bool:
    """A commit refused because the table moved on (a newer version, or created meanwhile)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(marker in text for marker in ("commitfailed", "version", "already exists", "concurrent", "conflict"))


@contextlib.contextmanager
def _concurrent_errors(name: str, also: tuple[str, ...] = ()) -> Any:
    """delta-spark's optimistic-concurrency exceptions (``ConcurrentAppendException`` ...) and ``also``
    as `ConcurrentWriteError`."""
    try:
        yield
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "Concurrent" in text or any(marker in text for marker in also):
            raise ConcurrentWriteError(f"table '{name}' changed concurrently: {text.splitlines()[0]}") from exc
        raise


def _newest_mtime(path: str) -> float:
    """The latest modification time of ``path`` and, for a folder, of anything inside it."""
    newest = os.path.getmtime(path)
    for folder, dirs, files in os.walk(path):
        for entry in dirs + files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.path.getmtime(os.path.join(folder, entry)))
    return newest


def _sql_string(text: str) -> str:
    """``text`` as a Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _remove_action(table_path: str, uri: str, now_ms: int) -> Any:
    """The delta-rs remove action of the table file ``uri``, with its size and partition values (from its
    Hive-style folders, as the lake and delta-rs lay files out): Change Data Feed readers need both to
    return the removed rows as deletes."""
    from deltalake.transaction import RemoveAction

    local = _local_path(uri)
    relative = os.path.relpath(local, table_path)
    return RemoveAction(relative, True, now_ms, size=os.path.getsize(local) if os.path.exists(local) else None,
                        partition_values=_partition_values(os.path.dirname(relative)))


def _partition_values(rel_dir: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for part in [p for p in rel_dir.split(os.sep) if p]:
        key, _, raw = part.partition("=")
        value = unquote(raw)
        values[unquote(key)] = None if value == _HIVE_NULL else value
    return values


def read_without_spark(path: str, columns: list[str], since_version: int | None = None
                       ) -> tuple[int, dict[str, list[Any]]] | None:
    """A Delta table's ``columns`` as Python lists, read with delta-rs (a server has no Spark; pyarrow
    14 cannot read files written by deltalake 1.x, so the query runs in delta-rs' DataFusion and the
    values come back as Python objects). Returns (version, {column: values}); None when the table does
    not exist or is still at ``since_version`` (nothing to reload)."""
    from deltalake import DeltaTable, QueryBuilder

    if not DeltaTable.is_deltatable(path):
        return None
    table = DeltaTable(path)
    version = int(table.version())
    if since_version is not None and version == since_version:
        return None
    quoted = ", ".join(f'"{c}"' for c in columns)
    result = QueryBuilder().register("t", table).execute(f"select {quoted} from t").read_all()
    return version, {c: [value.as_py() for value in result[c]] for c in columns}
