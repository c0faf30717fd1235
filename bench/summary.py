"""The JSON summary a benchmark or a `seasonrec` job prints last on stdout, for the scripts that run them."""

from __future__ import annotations

import json
from typing import Any


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` (a process's stdout): an indented document whose first line
    starts with "{" (the CLI's job summary when stdout is not a terminal), or a one-line object (a
    benchmark's last line). None when there is none.

    Example: ``last_json('log line\\n{"a": 1}\\n')`` is ``{"a": 1}``.
    """
    lines = text.strip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].strip().startswith("{"):
            for candidate in (lines[start], "\n".join(lines[start:])):
                try:
                    return json.loads(candidate)
                except ValueError:
                    continue
    return None
