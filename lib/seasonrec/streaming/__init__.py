"""Near-real-time state: `seasonrec stream` (Spark Structured Streaming, exactly-once into Delta).

`micro_batch` turns one micro-batch of raw event lines into bronze/quarantine rows (the ingest
rules) and the touched users' rows of user_recent_activity; `jobs` wires it to a file or Kafka
source with a checkpoint and a trigger.
"""
