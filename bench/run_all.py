"""`make bench`: run every bench/bench_*.py in its own process and print one JSON document.

Each benchmark prints a JSON object on its last stdout line; ratios are measured side by side
inside each benchmark (same run, same data), because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from summary import last_json

BENCH_DIR = Path(__file__).resolve().parent
TAKES_DATA = {"forecast", "serving", "training"}  # benches given --data (the Online Retail CSV) when run_all has it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. scoring,forecast")
    parser.add_argument("--out", default="reports/bench.json")
    parser.add_argument("--data", default=None, help="Online Retail CSV(.gz) for the benches that use it "
                        "(forecast, serving, training; serving without it skips its 4k catalogue, training "
                        "reads data.online_retail.path)")
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    results: dict[str, object] = {}
    failed = False
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        options = [*(["--quick"] if args.quick else []),
                   *(["--data", args.data] if args.data and name in TAKES_DATA else [])]
        proc = subprocess.run([sys.executable, str(script), *options], capture_output=True, text=True)
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr[-2000:]}
        elif (summary := last_json(proc.stdout)) is None:
            results[name] = {"error": "printed no JSON", "stdout_tail": proc.stdout[-2000:]}
        else:
            results[name] = summary
        failed |= "error" in results[name]  # type: ignore[operator]
        print(f"bench: {name} done in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    document = json.dumps(results, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(document + "\n")
    print(document)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
