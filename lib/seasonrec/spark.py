"""One way to get a SparkSession: the active one on Databricks, spark-submit's on a cluster, local[*] otherwise."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile

from pyspark.sql import SparkSession

from seasonrec import logs
from seasonrec.config import SeasonrecConfig

# Settings every seasonrec session needs, wherever it runs.
_COMMON_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
    # Delta readers (delta-rs included) expect INT64 micros, not Spark's legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.adaptive.enabled": "true",
}
# Local JVMs start with this log4j2 configuration unless the run is verbose: nothing below ERROR, so no
# startup notices (loopback hostname, native-hadoop library, "Setting default log level").
_QUIET_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# PySpark's gateway initialises logging as a shell: with its own level equal to the root's, Spark skips the
# "Setting default log level" notice.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


class SparkStartError(RuntimeError):
    """Spark cannot start here (no Java, master not answering); the message is the one line to show."""


def launched_by_spark_submit() -> bool:
    """spark-submit (and Databricks) start the JVM first and hand Python a gateway port."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(config: SeasonrecConfig) -> SparkSession:
    """Return the session for this process, creating a local one when nobody else did."""
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, config)
        return active
    # Executors must run the interpreter that has horovod/tensorflow installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    if launched_by_spark_submit():
        # spark-submit's --master and --name win over the config file; fail fast if the master does not answer.
        check_master(_submitted_master())
    else:
        check_java()
        master = config.spark.master or "local[*]"
        check_master(master)
        builder = builder.appName(config.spark.app_name).master(master)
        # Only meaningful before the JVM starts.
        builder = builder.config("spark.driver.memory", config.spark.driver_memory)
        builder = builder.config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
        builder = builder.config("spark.driver.extraJavaOptions", _driver_log_options())
    # Console progress bars are `\r`-redrawn lines: only for a person watching a terminal (or --verbose).
    progress = {"spark.ui.showConsoleProgress": str(logs.is_verbose() or logs.stderr_is_terminal()).lower()}
    for key, value in {**_COMMON_CONF, **progress, **config.spark.conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _apply_runtime_conf(spark, config)
    spark.sparkContext.setLogLevel(log_level(config))
    return spark


def log_level(config: SeasonrecConfig) -> str:
    """`spark.log_level` when the config sets it or the run is verbose; ERROR otherwise (Spark's WARN lines,
    e.g. task sizes or truncated plans, are for whoever tunes Spark, who runs with --verbose)."""
    if logs.is_verbose() or "log_level" in config.spark.model_fields_set:
        return config.spark.log_level
    return "ERROR"


def _driver_log_options() -> str:
    if logs.is_verbose():
        return "-Dlog4j.rootLogger=WARN,console"
    path = os.path.join(tempfile.gettempdir(), f"seasonrec-log4j2-quiet-{os.getuid() if hasattr(os, 'getuid') else 0}"
                                               ".properties")
    try:
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(_QUIET_LOG4J2)
        os.replace(partial, path)
    except OSError:  # no writable temp dir: Spark's defaults, filtered by setLogLevel once started
        return "-Dlog4j.rootLogger=WARN,console"
    return f"-Dlog4j.configurationFile=file:{path}"


def check_java() -> None:
    """Spark 3.5 needs Java 17: say so in one line instead of a failed JVM launch."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
            raise SparkStartError(f"Java not found: JAVA_HOME={java_home} has no bin/java; "
                                  "point JAVA_HOME at a Java 17 installation or unset it")
    elif shutil.which("java") is None:
        raise SparkStartError("Java not found: Spark 3.5 needs Java 17 on PATH or JAVA_HOME set "
                              "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")


def _submitted_master() -> str | None:
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # attaches to spark-submit's JVM; conf comes from its system properties
    return SparkConf().get("spark.master", None)


def check_master(master: str | None, timeout_seconds: float = 5.0) -> None:
    """For spark://host:port[,host:port] masters, fail fast unless one of them accepts connections.

    Without this, Spark retries for about a minute, prints pages of JVM stack traces and then fails
    with an unrelated "stopped SparkContext" error.
    """
    if not master or not master.startswith("spark://"):
        return
    reasons = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_seconds):
                return
        except (OSError, ValueError) as exc:
            reasons.append(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    raise SparkStartError(f"the Spark master {master} does not answer ({'; '.join(reasons)}); "
                          "check the MASTER / spark.master address and that the master is running")


def _runtime_conf(config: SeasonrecConfig) -> dict[str, str]:
    cache = config.paths.petastorm_cache_dir
    return {
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "petastorm.spark.converter.parentCacheDirUrl": cache if "://" in cache else f"file://{cache}",
    }


def _apply_runtime_conf(spark: SparkSession, config: SeasonrecConfig) -> None:
    for key, value in {**_COMMON_CONF, **_runtime_conf(config)}.items():
        # Static confs on a shared cluster cannot change at runtime; keep the cluster's.
        with contextlib.suppress(Exception):
            spark.conf.set(key, value)
