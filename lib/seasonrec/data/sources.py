"""Source readers: every source becomes the same "staged" frame of raw strings.

Staged columns: source_file, raw_line, the seasonrec fields as strings (invoice, user, item, timestamp,
quantity, price, description, category, country) and, from CSV readers, the flags ``malformed`` (more
or fewer fields than the header) and ``is_header`` (a line equal to the header). Nothing is parsed
here, so a bad value reaches `ingest` intact and can be quarantined with its raw line.

CSV is read as RFC 4180: fields in double quotes may hold commas, line breaks and doubled quotes
(``"HEART ""BIG"", WHITE"`` is ``HEART "BIG", WHITE``). An Excel workbook (``.xlsx``) is read as the CSV
file `seasonrec.data.xlsx` converts it to, through the same CSV reader.

A field's column is found by the name ``columns`` maps it to, or, in a file without that column, by the
first of its ``alternative_columns`` the file has (`file_columns`), so the UCI "Online Retail" and
"Online Retail II" files both read with the ``online_retail`` preset.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from urllib.parse import quote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from seasonrec.config import SOURCE_FIELDS, FileSourceConfig
from seasonrec.context import JobError
from seasonrec.data import xlsx

FIELDS = SOURCE_FIELDS
REPO_ROOT = Path(__file__).resolve().parents[3]
CORRUPT = "_corrupt_record"
RFC4180 = {"quote": '"', "escape": '"'}
# PERMISSIVE + a corrupt-record column: a record whose field count differs from the header keeps its
# text there (Spark then also parses every column, so the count is always checked).
CSV_READ_OPTIONS = {**RFC4180, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
CSV_WRITE_OPTIONS = {**RFC4180, "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false"}


def resolve_path(path: str) -> str:
    """Relative paths are tried against the working directory, then the repo root (so the default
    `../shared/...` works from the repo and from anywhere else)."""
    if "://" in path or os.path.isabs(path) or os.path.exists(path):
        return path if "://" in path else os.path.abspath(path)
    candidate = (REPO_ROOT / path).resolve()
    if candidate.exists():
        return str(candidate)
    raise JobError(f"input not found: {path} (tried {os.path.abspath(path)} and {candidate}); "
                   "set --path or data.file.path")


def header_fields(line: str) -> list[str]:
    """A CSV header line -> its column names (quotes and surrounding blanks removed)."""
    return [name.strip().strip('"') for name in next(csv.reader([line]))]


def column_choices(config: FileSourceConfig) -> dict[str, list[str]]:
    """Field -> the names its column may have in a file: ``config.columns``' name first, then its
    ``config.alternative_columns`` in order (what `file_columns` and the streaming job look for)."""
    return {field: [column, *config.alternative_columns.get(field, [])] for field, column in config.columns.items()}


def find_columns(config: FileSourceConfig, available: list[str]) -> tuple[dict[str, str], list[str]]:
    """(field -> the first of its `column_choices` in ``available``, the fields with none there, each
    written as its names joined by " or "). Example: ``find_columns(config, [])[1]`` lists every name
    looked for."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for field, names in column_choices(config).items():
        present = next((name for name in names if name in available), None)
        if present is None:
            missing.append(" or ".join(names))
        else:
            found[field] = present
    return found, missing


def file_columns(config: FileSourceConfig, available: list[str], location: str) -> dict[str, str]:
    """The field -> column mapping for one file whose columns are ``available``: each field's
    ``config.columns`` name when the file has it, else the first of its ``config.alternative_columns``
    that it has. `JobError` (one line, naming the file, the columns looked for and those it has) when a
    mapped field has none of them.

    Example: with the ``online_retail`` preset, a header ``Invoice,StockCode,...,Price,Customer ID,Country``
    (Online Retail II) gives ``{"invoice": "Invoice", "price": "Price", "user": "Customer ID", ...}``.
    """
    found, missing = find_columns(config, available)
    if missing:
        raise JobError(f"{location}: columns {missing} of data.<source>.columns (and alternative_columns) are not "
                       f"in {available}")
    return found


def _cells_schema(n_fields: int) -> StructType:
    return StructType([StructField(f"c{i}", StringType()) for i in range(n_fields)]
                      + [StructField(CORRUPT, StringType())])


def read_file_source(spark: SparkSession, config: FileSourceConfig, path: str | None = None,
                     staging: Callable[[], str] | None = None) -> DataFrame:
    """The staged frame of a file source (``path`` or ``config.path``: file, folder or glob), its
    columns found by `file_columns`.

    An Excel workbook (``.xlsx``, by its extension, whatever ``config.format``) is converted into CSV
    files in the folder ``staging()`` returns, one per worksheet of records (`seasonrec.data.xlsx`), and
    read as those CSV files; the caller removes the folder once the frame is no longer read. Its rows'
    ``source_file`` is the workbook, with ``#<worksheet>`` when it has several (so a sale listed on two
    worksheets, as where Online Retail II's years overlap, is one row, like a line in two CSV files)."""
    location = resolve_path(path or config.path)
    if xlsx.is_workbook(location):
        if staging is None:
            raise JobError(f"{location}: reading a workbook needs a staging folder for its CSV copy")
        sheets = xlsx.workbook_to_csv(location, staging())
        uri = Path(location).as_uri()
        # multiline: a cell holding a line break is one quoted field of the copy, never two records.
        staged = reduce(DataFrame.unionByName, [
            read_csv_source(spark, sheet.path, config, multiline=True).withColumn(
                "source_file", F.lit(uri if len(sheets) == 1 else f"{uri}#{quote(sheet.title)}"))
            for sheet in sheets])
    elif location.lower().endswith(".xls"):
        raise JobError(f"{location}: the old binary .xls format is not read; save the workbook as .xlsx")
    elif config.format == "csv":
        staged = read_csv_source(spark, location, config, config.multiline)
    else:
        raw = spark.read.format(config.format).load(location)
        mapping = file_columns(config, raw.columns, location)
        staged = raw.select(
            F.input_file_name().alias("source_file"),
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw.columns])).alias("raw_line"),
            *[(F.col(f"`{mapping[f]}`").cast("string") if f in mapping else F.lit(None).cast("string")).alias(f)
              for f in FIELDS])
    return finish_staging(staged)


def read_csv_source(spark: SparkSession, location: str, config: FileSourceConfig, multiline: bool) -> DataFrame:
    """CSV files with a header line (the first line of the first file names the columns, `file_columns`
    maps them) -> staged rows, one per CSV record, header lines included and flagged (``is_header``).
    ``raw_line`` is the record re-written as RFC 4180 CSV, or its text as read when its field count is
    wrong."""
    first = spark.read.text(location).limit(1).collect()
    if not first:
        raise JobError(f"{location} is empty")
    header = header_fields(first[0]["value"])
    mapping = file_columns(config, header, location)
    records = (spark.read.schema(_cells_schema(len(header)))
               .options(**CSV_READ_OPTIONS, header="false", multiLine=str(multiline).lower())
               .csv(location).withColumn("source_file", F.input_file_name()))
    cells = [F.col(f"c{i}") for i in range(len(header))]
    is_header = reduce(Column.__and__, [F.coalesce(F.trim(cell) == name, F.lit(False))
                                        for cell, name in zip(cells, header, strict=True)])
    raw_line = F.coalesce(F.col(CORRUPT), F.to_csv(F.struct(*cells), CSV_WRITE_OPTIONS))
    return _stage_cells(records, header, mapping, raw_line, is_header & F.col(CORRUPT).isNull())


def stage_csv_lines(lines: DataFrame, header: list[str], mapping: dict[str, str]) -> DataFrame:
    """CSV data lines (columns ``source_file``, ``value``: one record per line; header lines already
    removed) -> the staged fields as raw strings, by the position of each mapped column in ``header``.
    Blank lines are dropped; ``raw_line`` is the line itself.

    Used by the streaming job, so a streamed line is read like a line of a batch file.
    """
    ddl = ", ".join(f"`{field.name}` STRING" for field in _cells_schema(len(header)).fields)
    parsed = (lines.where(F.trim("value") != "")
              .select("source_file", "value", F.from_csv("value", ddl, CSV_READ_OPTIONS).alias("_row"))
              .select("source_file", "value", "_row.*"))
    return _stage_cells(parsed, header, mapping, F.col("value"), F.lit(False))


def _stage_cells(records: DataFrame, header: list[str], mapping: dict[str, str], raw_line: Column,
                 is_header: Column) -> DataFrame:
    """Parsed CSV cells (``c0``.., ``_corrupt_record``, ``source_file``) -> staged columns."""
    position = {name: i for i, name in enumerate(header)}
    return records.select(
        "source_file", raw_line.alias("raw_line"), F.col(CORRUPT).isNotNull().alias("malformed"),
        is_header.alias("is_header"),
        *[(F.col(f"c{position[mapping[f]]}") if f in mapping else F.lit(None).cast("string")).alias(f)
          for f in FIELDS])


def finish_staging(staged: DataFrame) -> DataFrame:
    """Trim the staged fields (blank -> null), keeping the other staged columns: the last step of every
    file reader, batch or streaming."""
    flags = [c for c in ("malformed", "is_header") if c in staged.columns]
    return staged.select("source_file", "raw_line", *flags,
                         *[F.when(F.trim(F.col(f)) != "", F.trim(F.col(f))).alias(f) for f in FIELDS])


def read_synthetic(spark: SparkSession, config) -> tuple[DataFrame, DataFrame]:
    """(staged transactions, planted truth) from the Spark generator."""
    from seasonrec.data import synthetic

    transactions, truth = synthetic.events(spark, config)
    source_file = f"synthetic://seed={config.seed}/n_events={config.n_events}"
    staged = transactions.select(
        F.lit(source_file).alias("source_file"),
        F.concat_ws(",", *[F.coalesce(F.col(f), F.lit("")) for f in FIELDS]).alias("raw_line"),
        *FIELDS,
        F.lit(1).alias("occurrence"),  # invoices are unique per line: no need to number repeats
    )
    return staged, truth
