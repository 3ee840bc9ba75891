"""A stand-in for the ``influx`` CLI 2.x, for running deploy/compose/influxdb-init/init.sh here.

No InfluxDB 2 server can run on this machine (Debian has only 1.x), so the script's
logic (what it creates, keeps, replaces and hands over) runs against this: the
subcommands init.sh uses, with the influx CLI's flags and its ``--hide-headers``
table output (tab-separated, the columns of influx-cli's clients/bucket, clients/task
and clients/auth), bucket IDs checked like the CLI does (16 hex digits). The state
is a JSON file (``FAKE_INFLUX_STATE``); every call is appended to its ``calls``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


def flags(args: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        name = args[i]
        if not name.startswith("--"):
            fail(f"unexpected argument {name!r}")
        if name in ("--hide-headers", "--json"):
            out.setdefault(name[2:], []).append("true")
            i += 1
            continue
        if i + 1 >= len(args):
            fail(f"flag needs an argument: {name}")
        out.setdefault(name[2:], []).append(args[i + 1])
        i += 2
    return out


def new_id() -> str:
    return secrets.token_hex(8)


def main(argv: list[str]) -> None:
    state_path = Path(os.environ["FAKE_INFLUX_STATE"])
    state: dict[str, Any] = json.loads(state_path.read_text())
    state["calls"].append(argv)
    if os.environ.get("INFLUX_HOST") != state["host"] or os.environ.get("INFLUX_TOKEN") != state["admin_token"]:
        state_path.write_text(json.dumps(state))
        fail("unauthorized access")
    group, verb, rest = argv[0], argv[1], flags(argv[2:])
    if "json" in rest:
        fail("--json is not what init.sh parses")
    if verb in ("list", "create") and "hide-headers" not in rest:
        fail("init.sh parses table rows: --hide-headers expected")
    org = rest.get("org", [None])[0]
    if verb in ("list", "create") and org != state["org"]:
        fail(f"organization {org!r} not found")
    out: list[list[str]] = []
    if group == "bucket" and verb == "list":
        (name,) = rest["name"]
        found = [b for b in state["buckets"] if b["name"] == name]
        if not found:
            state_path.write_text(json.dumps(state))
            fail(f'failed to find bucket by name: bucket "{name}" not found')
        out = [[b["id"], b["name"], b["retention"], "24h0m0s", state["org_id"], "implicit"] for b in found]
    elif group == "bucket" and verb == "create":
        retention = {"0": "infinite", "30d": "720h0m0s"}[rest["retention"][0]]
        bucket = {"id": new_id(), "name": rest["name"][0], "retention": retention,
                  "description": rest.get("description", [""])[0]}
        state["buckets"].append(bucket)
        out = [[bucket["id"], bucket["name"], retention, "168h0m0s", state["org_id"], "implicit"]]
    elif group == "task" and verb in ("list", "create", "update"):
        if verb == "create" or verb == "update":
            flux = Path(rest["file"][0]).read_text()
            match = re.search(r'^option task = \{name: "([^"]+)", every: (\w+)', flux, re.M)
            if not match:
                fail("task: no option task with a name and every")
            if verb == "create":
                state["tasks"].append({"id": new_id(), "name": match[1], "every": match[2], "flux": flux})
            else:
                (task,) = [t for t in state["tasks"] if t["id"] == rest["id"][0]]
                task.update(name=match[1], every=match[2], flux=flux)
        tasks = state["tasks"] if verb == "list" else [t for t in state["tasks"] if t["name"] == match[1]]
        out = [[t["id"], t["name"], state["org_id"], state["org"], "active", t["every"], ""] for t in tasks]
    elif group == "auth" and verb == "list":
        out = [[a["id"], a["description"], a["token"], "admin", "0a0a0a0a0a0a0a0a", " ".join(a["perms"])]
               for a in state["auths"]]
    elif group == "auth" and verb == "create":
        perms = []
        for action in ("read", "write"):
            for bid in rest.get(f"{action}-bucket", []):
                if not re.fullmatch(r"[0-9a-f]{16}", bid):
                    fail(f"invalid bucket ID '{bid}' (did you pass a bucket name instead of an ID?)")
                perms.append(f"{action}:orgs/{state['org_id']}/buckets/{bid}")
        auth = {"id": new_id(), "description": rest["description"][0],
                "token": secrets.token_urlsafe(32) + "==", "perms": perms}
        state["auths"].append(auth)
        out = [[auth["id"], auth["description"], auth["token"], "admin", "0a0a0a0a0a0a0a0a",
                "[" + " ".join(perms) + "]"]]
    elif group == "auth" and verb == "delete":
        before = len(state["auths"])
        state["auths"] = [a for a in state["auths"] if a["id"] != rest["id"][0]]
        if len(state["auths"]) == before:
            fail(f'could not find auth with ID "{rest["id"][0]}"')
    else:
        fail(f"unknown command {group} {verb}")
    state_path.write_text(json.dumps(state))
    for row in out:
        print("\t".join(row))


if __name__ == "__main__":
    main(sys.argv[1:])
