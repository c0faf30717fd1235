"""spark-submit entry point for `seasonrec score`; options as in `seasonrec score --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
