"""spark-submit entry point for `seasonrec show`; options as in `seasonrec show --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["show", *sys.argv[1:]]))
