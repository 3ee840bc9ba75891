"""``p1-web``: configuration API, live pages and event stream of the P1 energy stack."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from p1common.service import state_dir
from p1common.settings import CommonSettings, SettingsError

from .settings import WebSettings

EPILOG = """\
environment (shared): MQTT_URL, MQTT_CA_FILE, MQTT_CLIENT_ID, P1_TOPIC_PREFIX,
  P1_SITE (default site of the pages), LOG_LEVEL, METRICS_PORT, P1_STATE_DIR
environment (web): P1_WEB_HOST (0.0.0.0), P1_WEB_PORT (8080),
  P1_WEB_TOKEN / P1_WEB_TOKEN_FILE (write token; generated and stored in the state
  directory when neither is set), P1_WEB_PROTECT_READS (false),
  P1_WEB_QUARTERS_KEPT (96), P1_WEB_SEED_OUTPUTS (outputs document stored for P1_SITE
  when it has none yet; make run passes deploy/demo/outputs.json)
pages: /live /peak /outputs /devices; API description: /docs and /openapi.json
every request: a write without the token is refused (401) before its body is read;
  bodies over 256 KiB are refused (413); security headers (CSP, X-Frame-Options DENY)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="p1-web",
        description="Serve the live pages and the configuration REST API; store the "
        "configuration documents and publish them retained on p1/config/<site>/...",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (P1_WEB_HOST, default 0.0.0.0)")
    p.add_argument("--port", type=int, help="HTTP port (P1_WEB_PORT, default 8080)")
    p.add_argument("--protect-reads", action="store_true", default=None,
                   help="reads need the token too, in the header (the event stream also "
                   "takes ?token=) (P1_WEB_PROTECT_READS)")
    p.add_argument("--seed-outputs", metavar="FILE",
                   help="outputs document (JSON) stored and published for the default site "
                   "when it has none yet; later changes on the page win (P1_WEB_SEED_OUTPUTS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        common = CommonSettings.from_env()
        web = WebSettings.from_env()
    except SettingsError as exc:
        print(f"p1-web: {exc}", file=sys.stderr)
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        print(f"p1-web: --port: {args.port} is not a TCP port", file=sys.stderr)
        return 2
    if args.seed_outputs:
        web = dataclasses.replace(web, seed_outputs=args.seed_outputs)
    if args.protect_reads:  # before the service is built: it logs what reads need
        web = dataclasses.replace(web, protect_reads=True)
    from .service import WebService  # after the settings: a bad value fails fast

    try:
        service = WebService(common, web, state_dir("web"))
    except SettingsError as exc:
        print(f"p1-web: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the state directory: read-only, not ours, disk full
        where = f" {exc.filename}" if exc.filename else ""
        print(f"p1-web: P1_STATE_DIR: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    service.serve(args.host or web.host, web.port if args.port is None else args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
