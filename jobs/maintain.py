"""spark-submit entry point for `seasonrec maintain`; options as in `seasonrec maintain --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
