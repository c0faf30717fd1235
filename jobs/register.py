"""spark-submit entry point for `seasonrec register`; options as in `seasonrec register --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["register", *sys.argv[1:]]))
