"""python -m benchmarks.child module:function: run one benchmark function and print its Results.

benchmarks.in_child_process starts this with extra environment variables (ones that must be set
before torch loads) and reads the last line of stdout: the Results as a JSON list.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(target: str) -> None:
    module, _, function = target.partition(":")
    results = getattr(importlib.import_module(module), function)()
    print(json.dumps([r.as_dict() for r in results]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
