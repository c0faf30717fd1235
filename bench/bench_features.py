"""Ingest + features throughput on synthetic data; see seasonrec.data.bench for options."""

from seasonrec.data.bench import main

if __name__ == "__main__":
    main()
