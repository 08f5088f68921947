"""Write the dev/test split of each shared evaluation set to benchmarks/splits/<set>.json.

The split is the rule in `_common.split_queries` (a salted hash of each query id); the files
record it so a reader can see which queries tuned the defaults and which report them.

    .venv/bin/python benchmarks/write_splits.py [--sets pyfaq debfaq]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, SPLIT_SALT, SPLITS_DIR, split_queries  # noqa: E402

from ragnb.evaluate import load_beir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["pyfaq", "debfaq"])
    args = parser.parse_args()
    SPLITS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        data = load_beir(EVAL / name)
        halves = split_queries(data.queries["query_id"].to_list(), data.name)
        record = {
            "set": data.name,
            "rule": f"sort query ids by sha256('{SPLIT_SALT}|{data.name}|<id>'); "
            "the first ceil(n/2) are dev, the rest test",
            **halves,
        }
        path = SPLITS_DIR / f"{name}.json"
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{path}: dev {len(halves['dev'])}, test {len(halves['test'])}")


if __name__ == "__main__":
    main()
