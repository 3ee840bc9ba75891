#!/usr/bin/env python3
"""Generate Mosquitto users, passwords and ACLs for the P1 stack (stdlib only).

One MQTT user per service and per device; each may write only its own topics:

    python3 deploy/mosquitto/mkusers.py --out deploy/mosquitto/generated \\
        --device home:output:boiler --device home:output:heatpump-relay:heatpump \\
        --device home:monitor:hall-monitor --device home:dongle:p1-dongle

writes, in --out (keep it out of git; the folder gets a .gitignore):
  passwd         Mosquitto password file (PBKDF2-SHA512, Mosquitto 2 format)
  acl            Mosquitto ACL file
  credentials.env  every user's password in clear (USER=password), reused on the next run
  env/<service>.env  MQTT_URL and MQTT_CLIENT_ID for each service (compose env_file, k8s Secret)

Devices: ``SITE:output:DEVICE_ID[:OUTPUT_ID]`` (mini-switch, switcher: read their own
``set`` and config, write their own ``state``), ``SITE:monitor:DEVICE_ID`` (LED
monitor: reads live, peak and its config) or ``SITE:dongle:DEVICE_ID`` (the ESP P1 dongle:
writes the site's raw telegrams, ``p1/SITE/raw``, and reads nothing). A device logs in with its DEVICE_ID as
user name AND as client id (its ``device_id`` setting): the broker runs with
``use_username_as_clientid``, so nobody can take over another client's id or write
another client's ``p1/status/<client-id>``.

Running it again keeps existing passwords (from credentials.env) and adds new users;
``--rotate`` makes new passwords for everyone.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import sys
from pathlib import Path

# Copies of the stack's rules (this script runs on a deployment host without the stack's
# Python packages; tests/deploy checks that each copy equals its original):
# p1common.topics.SITE_PATTERN, the site-name rule of P1_SITE, topics and the web
SITE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SITE_RULE = "1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
# p1common.payloads.OUTPUT_ID_PATTERN, the output id the web and the load-controller take
OUTPUT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
OUTPUT_ID_RULE = "1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")  # a device id: a user and client id
ID_RULE = "1-64 letters, digits, '.', '-' or '_', not starting with a dot"
HOST_NETWORK = {"bridge-multicast"}  # multicast needs the host network: broker via localhost
ITERATIONS = 101  # Mosquitto 2's default for $7$ (PBKDF2-SHA512)

# service user -> (read patterns, write patterns); {p} = topic prefix
SERVICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "p1-reader": (
        # {p}/+/raw: P1_SOURCE=mqtt reads a dongle's telegrams
        ("{p}/config/#", "{p}/+/raw", "homeassistant/status"),
        ("{p}/+/reading", "{p}/+/live", "{p}/+/raw", "homeassistant/#"),
    ),
    "bridge-multicast": (
        ("{p}/+/reading", "{p}/+/live", "{p}/config/#"),
        ("{p}/+/reading", "{p}/+/live"),
    ),
    "peak-forecaster": (
        # {p}/+/control: the outputs the load-controller can shed leave the learner's forecast
        ("{p}/+/reading", "{p}/+/control", "{p}/config/#", "homeassistant/status"),
        ("{p}/+/peak", "{p}/+/peak/quarter", "{p}/+/peak/month", "homeassistant/#"),
    ),
    "load-controller": (
        ("{p}/+/reading", "{p}/+/peak", "{p}/+/peak/#", "{p}/+/output/+/state",
         "{p}/config/#", "{p}/status/+", "homeassistant/status"),
        ("{p}/+/output/+/set", "{p}/+/control", "homeassistant/#"),
    ),
    # ev-gateway: the ev outputs' set/state; evcc's loadpoints (evcc's own root topic, "evcc")
    "ev-gateway": (
        ("{p}/+/output/+/set", "{p}/config/#", "evcc/loadpoints/#"),
        ("{p}/+/output/+/state", "evcc/loadpoints/+/+/set"),
    ),
    # its second connection, whose last will pauses an evcc loadpoint (client id = user name:
    # a user of its own, so that it does not displace the gateway's main connection)
    "ev-gateway-will": (
        (),
        ("evcc/loadpoints/+/mode/set",),
    ),
    # evcc itself, when it uses this broker (deploy/evcc/evcc.yaml): its own tree, our readings
    "evcc": (
        ("evcc/#", "{p}/+/reading"),
        ("evcc/#",),
    ),
    "p1-web": (
        ("{p}/#", "homeassistant/status"),
        ("{p}/config/#",),
    ),
    "p1-recorder": (
        ("{p}/#",),
        (),
    ),
    "homeassistant": (
        ("{p}/#", "homeassistant/#"),
        ("homeassistant/status",),
    ),
}


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2 password hash: ``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def parse_device(spec: str) -> tuple[str, str, str, str]:
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[1] not in ("output", "monitor", "dongle") \
            or (len(parts) == 4 and parts[1] != "output"):
        raise SystemExit(f"--device {spec!r}: use SITE:output:DEVICE_ID[:OUTPUT_ID], "
                         "SITE:monitor:DEVICE_ID or SITE:dongle:DEVICE_ID")
    site, kind, device = parts[:3]
    output = parts[3] if len(parts) == 4 else device
    for what, value, pattern, rule in (("site", site, SITE_PATTERN, SITE_RULE),
                                       ("device id", device, ID_RE.pattern, ID_RULE),
                                       ("output id", output, OUTPUT_ID_PATTERN, OUTPUT_ID_RULE)):
        if not re.fullmatch(pattern, value):  # whole: "$" alone lets a trailing newline in
            raise SystemExit(f"--device {spec!r}: {what} {value!r}: use {rule}")
    if device in SERVICES:
        raise SystemExit(f"--device {spec!r}: {device!r} is a service user name")
    return site, kind, device, output


def device_acl(prefix: str, site: str, kind: str, device: str, output: str) -> tuple[list[str], list[str]]:
    if kind == "output":
        reads = [f"{prefix}/{site}/output/{output}/set", f"{prefix}/config/{site}/outputs",
                 f"{prefix}/config/{site}/switcher/{device}"]
        writes = [f"{prefix}/{site}/output/{output}/state"]
    elif kind == "dongle":
        reads, writes = [], [f"{prefix}/{site}/raw"]
    else:
        reads = [f"{prefix}/{site}/live", f"{prefix}/{site}/peak",
                 f"{prefix}/config/{site}/monitor/{device}"]
        writes = []
    return reads, writes


def render_acl(prefix: str, devices: list[tuple[str, str, str, str]]) -> str:
    out = [
        "# Generated by deploy/mosquitto/mkusers.py: do not edit, run it again.",
        "# Every client writes its own status (client id = user name: use_username_as_clientid).",
        f"pattern write {prefix}/status/%c",
        "",
    ]
    for user, (reads, writes) in SERVICES.items():
        out.append(f"user {user}")
        out += [f"topic read {t.format(p=prefix)}" for t in reads]
        out += [f"topic write {t.format(p=prefix)}" for t in writes]
        out.append("")
    for site, kind, device, output in devices:
        reads, writes = device_acl(prefix, site, kind, device, output)
        out.append(f"# device: {kind} on site {site}" + (f", output {output}" if kind == "output" else ""))
        out.append(f"user {device}")
        out += [f"topic read {t}" for t in reads]
        out += [f"topic write {t}" for t in writes]
        out.append("")
    return "\n".join(out)


def load_credentials(path: Path) -> dict[str, str]:
    creds: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                user, _, password = line.partition("=")
                creds[user.strip()] = password.strip()
    return creds


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (keep it out of git)")
    ap.add_argument("--device", action="append", default=[], metavar="SPEC",
                    help="SITE:output:DEVICE_ID[:OUTPUT_ID], SITE:monitor:DEVICE_ID or "
                    "SITE:dongle:DEVICE_ID (repeat)")
    ap.add_argument("--prefix", default="p1", help="topic prefix (P1_TOPIC_PREFIX, default p1)")
    ap.add_argument("--host", default="mosquitto", help="broker host in the services' MQTT_URL")
    ap.add_argument("--host-network-broker", default="127.0.0.1",
                    help="broker host for services on the host network (bridge-multicast)")
    ap.add_argument("--port", type=int, default=1883, help="broker port in MQTT_URL")
    ap.add_argument("--tls", action="store_true", help="mqtts:// in MQTT_URL (port 8883 listener)")
    ap.add_argument("--rotate", action="store_true", help="new passwords for every user")
    args = ap.parse_args(argv)
    out = Path(args.out)
    devices = [parse_device(spec) for spec in args.device]
    users = list(SERVICES) + [d[2] for d in devices]
    if len(set(users)) != len(users):
        raise SystemExit("two devices have the same DEVICE_ID (user names must be unique)")
    creds = {} if args.rotate else load_credentials(out / "credentials.env")
    for user in users:
        creds.setdefault(user, secrets.token_urlsafe(24))
    creds = {u: creds[u] for u in users}
    out.mkdir(parents=True, exist_ok=True)
    (out / ".gitignore").write_text("# secrets: never commit\n*\n")
    # passwd and acl: 0640, so the broker container reads them through its group (group_add)
    write_private(out / "passwd", "".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in creds.items()),
                  0o640)
    write_private(out / "acl", render_acl(args.prefix, devices), 0o640)
    write_private(out / "credentials.env", "".join(f"{u}={p}\n" for u, p in creds.items()))
    scheme = "mqtts" if args.tls else "mqtt"
    for service in SERVICES:
        if service in ("homeassistant", "ev-gateway-will", "evcc"):  # no service of ours
            continue
        host = args.host_network_broker if service in HOST_NETWORK else args.host
        url = f"{scheme}://{service}:{creds[service]}@{host}:{args.port}"
        extra = ""
        if service == "ev-gateway":
            extra = (f"EVGW_EVCC_WILL_MQTT_URL={scheme}://ev-gateway-will:"
                     f"{creds['ev-gateway-will']}@{host}:{args.port}\n")
        write_private(out / "env" / f"{service}.env",
                      f"MQTT_URL={url}\nMQTT_CLIENT_ID={service}\n{extra}")
    print(f"wrote {out}/passwd, acl, credentials.env and env/*.env for {len(users)} users",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
