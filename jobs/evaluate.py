"""spark-submit entry point for `seasonrec evaluate`; options as in `seasonrec evaluate --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
