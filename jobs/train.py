"""spark-submit entry point for `seasonrec train`; options as in `seasonrec train --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
