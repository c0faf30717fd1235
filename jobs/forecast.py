"""spark-submit entry point for `seasonrec forecast`; options as in `seasonrec forecast --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["forecast", *sys.argv[1:]]))
