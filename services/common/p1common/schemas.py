"""Write (or check) the JSON Schemas of the contract into ``docs/schemas/``.

``p1-schemas DIR`` writes them; ``--check`` fails when the files on disk differ
from the models, so the docs cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .payloads import SCHEMAS


def render() -> dict[str, str]:
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="p1-schemas", description=__doc__)
    ap.add_argument("dir", nargs="?", default="docs/schemas", help="output folder")
    ap.add_argument("--check", action="store_true", help="fail if the files are out of date")
    args = ap.parse_args(argv)
    target = Path(args.dir)
    stale = []
    for fname, text in render().items():
        path = target / fname
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(fname)
        else:
            target.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date in {target}: {', '.join(stale)} (run `make schemas`)", file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {len(SCHEMAS)} schemas to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
