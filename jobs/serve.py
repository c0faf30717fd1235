"""Entry point for `seasonrec serve` (no Spark: run it with python, not spark-submit).

Options as in `seasonrec serve --help`.
"""

import sys

from seasonrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
