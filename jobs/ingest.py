"""spark-submit entry point for `seasonrec ingest`; options as in `seasonrec ingest --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
