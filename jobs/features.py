"""spark-submit entry point for `seasonrec features`; options as in `seasonrec features --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
