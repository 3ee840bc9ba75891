"""A real Home Assistant (2025.4.4, its own Python 3.13 venv .venv-ha) for the tests in tests/ha/.

``make ha-venv`` installs it (``make test`` does when pyenv's Python 3.13.0 exists). The
test writes a configuration directory before start: configuration.yaml (http on a free
loopback port, recorder, energy, api), ``.storage/core.config_entries`` with an MQTT entry
pointing at the test's Mosquitto (discovery on), ``.storage/auth`` with an admin user and a
long-lived access token (HS256 JWT signed here with the token's key, as Home Assistant
does), and the test-only integration ``p1_test_hooks``. Home Assistant runs with
``--skip-pip``: it never installs anything at test time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from support import REPO, free_port, wait_for

HA_VENV = REPO / ".venv-ha"
HASS = HA_VENV / "bin" / "hass"
HA_STAMP = HA_VENV / ".installed"
HA_VERSION = "2025.4.4"
HOOKS = Path(__file__).resolve().parent / "custom_components" / "p1_test_hooks"


def pyenv_python() -> Path | None:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    p = Path(root) / "versions" / "3.13.0" / "bin" / "python"
    return p if p.exists() else None


def skip_reason() -> str | None:
    """Why the Home Assistant tests cannot run here, or None."""
    if HASS.exists() and HA_STAMP.exists():
        return None
    if pyenv_python() is None:
        return ("Home Assistant needs Python 3.13 (pyenv's 3.13.0 is not installed): "
                "`make ha-venv` cannot build .venv-ha")
    return "Home Assistant is not installed: run `make ha-venv` (about 4 minutes)"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims: dict[str, Any], key: str) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _storage(key: str, data: dict[str, Any], minor: int = 1) -> str:
    return json.dumps({"version": 1, "minor_version": minor, "key": key, "data": data}, indent=1)


class HomeAssistant:
    """Home Assistant as a process on 127.0.0.1:<free port>, config in ``config_dir``."""

    def __init__(self, config_dir: Path, mqtt_port: int) -> None:
        self.dir = config_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        storage = config_dir / ".storage"
        storage.mkdir(parents=True)
        (config_dir / "configuration.yaml").write_text(f"""\
homeassistant:
  name: P1 test
  latitude: 50.85
  longitude: 4.35
  elevation: 20
  unit_system: metric
  currency: EUR
  country: BE
  time_zone: Europe/Brussels
http:
  server_host: 127.0.0.1
  server_port: {self.port}
api:
recorder:
  commit_interval: 1
energy:
p1_test_hooks:
logger:
  default: warning
""")
        shutil.copytree(HOOKS, config_dir / "custom_components" / "p1_test_hooks",
                        ignore=shutil.ignore_patterns("__pycache__"))
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        (storage / "core.config_entries").write_text(_storage("core.config_entries", {"entries": [{
            "entry_id": uuid.uuid4().hex, "domain": "mqtt", "title": "Mosquitto (test)",
            "version": 1, "minor_version": 2, "source": "user", "unique_id": None,
            "data": {"broker": "127.0.0.1", "port": mqtt_port},
            "options": {"discovery": True}, "disabled_by": None,
        }]}))
        user_id, token_id, jwt_key = uuid.uuid4().hex, uuid.uuid4().hex, secrets.token_hex(64)
        (storage / "auth").write_text(_storage("auth", {
            "users": [{"id": user_id, "group_ids": ["system-admin"], "is_owner": True,
                       "is_active": True, "name": "p1 test", "system_generated": False,
                       "local_only": False}],
            "groups": [{"id": "system-admin", "name": "Administrators"},
                       {"id": "system-users", "name": "Users"},
                       {"id": "system-read-only", "name": "Read Only"}],
            "credentials": [],
            "refresh_tokens": [{
                "id": token_id, "user_id": user_id, "client_id": None, "client_name": "p1 tests",
                "client_icon": None, "token_type": "long_lived_access_token", "created_at": now,
                "access_token_expiration": 315360000.0, "token": secrets.token_hex(64),
                "jwt_key": jwt_key, "last_used_at": None, "last_used_ip": None,
                "expire_at": None, "credential_id": None, "version": HA_VERSION,
            }],
        }))
        iat = int(time.time()) - 60
        self.token = jwt_hs256({"iss": token_id, "iat": iat, "exp": iat + 315360000}, jwt_key)

    # -- process ---------------------------------------------------------------------------
    def start(self, timeout_s: float = 120) -> None:
        self.out = open(self.dir / "hass.stdout", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(HASS), "-c", str(self.dir), "--skip-pip", "--log-no-color"],
            stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(self._api_up, timeout_s=timeout_s, interval_s=0.5)

    def _api_up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"Home Assistant exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
        try:
            return "API running" in self.get("/api/")["message"]
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: Home Assistant saves its registries and closes the recorder."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    # -- APIs --------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def state(self, entity_id: str) -> dict[str, Any] | None:
        try:
            return self.get(f"/api/states/{entity_id}")  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def ws(self, *commands: dict[str, Any], timeout_s: float = 60) -> list[Any]:
        """Run websocket commands in order; their results (a failed one raises)."""
        results = []
        with connect(f"ws://127.0.0.1:{self.port}/api/websocket", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout_s))["type"] == "auth_required"
            ws.send(json.dumps({"type": "auth", "access_token": self.token}))
            auth = json.loads(ws.recv(timeout_s))
            assert auth["type"] == "auth_ok", auth
            for n, cmd in enumerate(commands, 1):
                ws.send(json.dumps({"id": n, **cmd}))
                while True:
                    msg = json.loads(ws.recv(timeout_s))
                    if msg.get("id") == n and msg["type"] == "result":
                        break
                assert msg["success"], (cmd, msg)
                results.append(msg["result"])
        return results

    # -- Home Assistant's own files ---------------------------------------------------------------
    def log(self) -> str:
        path = self.dir / "home-assistant.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def storage(self, key: str) -> Any:
        return json.loads((self.dir / ".storage" / key).read_text())["data"]

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.dir / 'home-assistant_v2.db'}?mode=ro", uri=True)

    def recorded_states(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """entity_id -> [(state, attributes)] in order, from the recorder's SQLite."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        with self.db() as con:
            rows = con.execute(
                "SELECT m.entity_id, s.state, a.shared_attrs FROM states s "
                "JOIN states_meta m ON m.metadata_id = s.metadata_id "
                "LEFT JOIN state_attributes a ON a.attributes_id = s.attributes_id "
                "ORDER BY s.state_id").fetchall()
        for entity_id, state, attrs in rows:
            out.setdefault(entity_id, []).append((state, json.loads(attrs) if attrs else {}))
        return out
