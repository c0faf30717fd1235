"""spark-submit entry point for `seasonrec pipeline`; options as in `seasonrec pipeline --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
