"""spark-submit entry point for `seasonrec stream`; options as in `seasonrec stream --help`."""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["stream", *sys.argv[1:]]))
