"""Offline checks of deploy/: kustomize builds, Kubernetes schemas, yamllint, compose, hadolint,
Grafana dashboards against what the recorder writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from recorder.mapping import MEASUREMENTS
from support import REPO

DEPLOY = REPO / "deploy"
SERVICES = ["p1-reader", "peak-forecaster", "load-controller", "bridge-multicast", "p1-web",
            "p1-recorder"]


def tool(name: str) -> str:
    """A pinned tool from the venv (pyproject's dev extra), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; `make setup` installs it")
        pytest.skip(f"{name} is not installed")
    return found


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def overlay_build(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The documented flow: generate the secrets next to the overlay, then build it."""
    root = tmp_path_factory.mktemp("k3s")
    shutil.copytree(DEPLOY / "k3s", root / "k3s")
    secrets = root / "k3s" / "overlays" / "pi" / "secrets"
    subprocess.run([sys.executable, str(DEPLOY / "mosquitto" / "mkusers.py"), "--out", str(secrets),
                    "--host", "mosquitto.p1.svc.cluster.local", "--host-network-broker",
                    "mosquitto.p1.svc.cluster.local", "--device", "home:output:boiler"],
                   check=True, capture_output=True, timeout=60)
    (secrets / "stack.env").write_text("INFLUX_TOKEN=t0ken\nINFLUX_ADMIN_PASSWORD=pw1\n"
                                       "GRAFANA_ADMIN_PASSWORD=pw2\n")
    out = run(tool("kubectl"), "kustomize", str(root / "k3s" / "overlays" / "pi"))
    assert out.returncode == 0, out.stderr
    (root / "overlay.yaml").write_text(out.stdout)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("kubernetes-validate"), "--strict", "--quiet", str(path))


def test_base_builds_and_validates(tmp_path: Path) -> None:
    out = run(tool("kubectl"), "kustomize", str(DEPLOY / "k3s" / "base"))
    assert out.returncode == 0, out.stderr
    (tmp_path / "base.yaml").write_text(out.stdout)
    res = validate(tmp_path / "base.yaml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_overlay_validates_against_kubernetes_schemas(overlay_build: list, tmp_path: Path) -> None:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump_all(overlay_build))
    res = validate(path)
    assert res.returncode == 0, res.stdout + res.stderr
    # the check can fail: a wrong type in one Deployment is caught
    broken = json.loads(json.dumps(overlay_build))
    next(d for d in broken if d["kind"] == "Deployment")["spec"]["replicas"] = "one"
    path.write_text(yaml.safe_dump_all(broken))
    assert validate(path).returncode != 0


def test_every_service_deployment_is_hardened_and_probed(overlay_build: list) -> None:
    deps = by_kind(overlay_build, "Deployment")
    assert set(deps) == {*SERVICES, "mosquitto", "influxdb", "grafana"}
    assert {d["metadata"]["namespace"] for d in overlay_build if d["kind"] != "Namespace"} == {"p1"}
    for name in SERVICES:
        pod = deps[name]["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert c["image"] == "registry.local:5000/p1-energy-stack:0.1.0"
        assert c["command"][0] == name
        port = 9101 if name == "bridge-multicast" else 9100
        assert {p["containerPort"] for p in c["ports"] if p["name"] == "metrics"} == {port}
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        refs = [e.get("secretRef", {}).get("name", "") for e in c["envFrom"]]
        assert any(r.startswith(f"mqtt-{name}-") for r in refs), refs  # generated, hashed
    reader = deps["p1-reader"]["spec"]["template"]["spec"]
    assert reader["nodeSelector"] == {"p1.energy/meter": "true"}
    assert {"name": "serial", "hostPath": {"path": "/dev/serial/by-id", "type": "Directory"}} \
        in reader["volumes"]
    assert deps["bridge-multicast"]["spec"]["template"]["spec"]["hostNetwork"] is True


def test_secrets_are_generated_from_mkusers(overlay_build: list) -> None:
    secrets = {re.sub(r"-[a-z0-9]{10}$", "", n): s for n, s in by_kind(overlay_build, "Secret").items()}
    assert set(secrets) == {"mosquitto-users", "p1-secrets", *(f"mqtt-{s}" for s in SERVICES)}
    assert set(secrets["mosquitto-users"]["data"]) == {"passwd", "acl"}
    import base64
    url = base64.b64decode(secrets["mqtt-p1-recorder"]["data"]["MQTT_URL"]).decode()
    assert re.fullmatch(r"mqtt://p1-recorder:[\w-]+@mosquitto\.p1\.svc\.cluster\.local:1883", url)
    cms = {re.sub(r"-[a-z0-9]{10}$", "", n): c for n, c in by_kind(overlay_build, "ConfigMap").items()}
    assert cms["p1-settings"]["data"]["P1_SERIAL_URL"].startswith("/dev/serial/by-id/")
    assert set(cms["grafana-dashboards"]["data"]) == {"p1-live.json", "p1-energy.json",
                                                      "p1-capacity.json", "p1-outputs.json"}
    ingress = by_kind(overlay_build, "Ingress")["p1-web"]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["rules"][0]["host"] == "p1.home.arpa"


def test_no_secret_committed() -> None:
    tracked = run("git", "ls-files", "deploy", cwd=REPO).stdout.split()
    assert not [f for f in tracked if "/secrets/" in f or "/generated/" in f or f.endswith("/.env")]


def test_copies_for_kustomize_are_identical() -> None:
    base = DEPLOY / "k3s" / "base"
    pairs = [(DEPLOY / "mosquitto" / "mosquitto.conf", base / "mosquitto" / "mosquitto.conf"),
             (DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml",
              base / "grafana" / "datasource.yaml"),
             (DEPLOY / "grafana" / "provisioning" / "dashboards" / "p1.yaml",
              base / "grafana" / "dashboard-provider.yaml")]
    pairs += [(p, base / "grafana" / "dashboards" / p.name)
              for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")]
    for original, copy in pairs:
        assert original.read_bytes() == copy.read_bytes(), f"{copy}: cp {original} {copy}"


def test_yamllint() -> None:
    res = run(tool("yamllint"), "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY))
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_validates_against_the_compose_spec() -> None:
    compose = DEPLOY / "compose" / "compose.yaml"
    res = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose))
    assert res.returncode == 0, res.stdout + res.stderr
    doc = yaml.safe_load(compose.read_text())
    svcs = doc["services"]
    assert set(svcs) == {*SERVICES, "mosquitto", "influxdb", "grafana"}
    for name in SERVICES:
        assert svcs[name]["command"][0] == name
        assert svcs[name]["env_file"] == [f"../mosquitto/generated/env/{name}.env"]
        assert svcs[name]["read_only"] is True and svcs[name]["cap_drop"] == ["ALL"]
    assert svcs["p1-reader"]["devices"] == ["${P1_SERIAL_DEVICE:-/dev/ttyUSB0}:/dev/ttyUSB0"]
    assert svcs["bridge-multicast"]["network_mode"] == "host"
    for path in ("../mosquitto/mosquitto.conf", "../grafana/provisioning", "../grafana/dashboards"):
        assert (compose.parent / path).exists()
    assert (compose.parent / ".env.example").exists()
    # the check can fail: a wrong type is refused
    bad = compose.parent.parent.parent / "test-artifacts"
    bad.mkdir(exist_ok=True)
    broken = dict(doc, services=dict(svcs, mosquitto=dict(svcs["mosquitto"], ports="1883")))
    (bad / "compose-broken.yaml").write_text(yaml.safe_dump(broken))
    res = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
              str(bad / "compose-broken.yaml"))
    assert res.returncode != 0


def test_dockerfile_lints_and_is_non_root() -> None:
    res = run(tool("hadolint"), str(REPO / "Dockerfile"))
    assert res.returncode == 0, res.stdout + res.stderr
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "python:3.11-slim" in text
    assert not re.search(r"amd64|aarch64|arm64", text.split("FROM", 1)[1])  # no arch downloads
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("**"):][:4] == ["**", "!pyproject.toml", "!README.md", "!services/"]


def flux_fields(query: str) -> tuple[set[str], set[str]]:
    return (set(re.findall(r'r\._measurement == "(\w+)"', query)),
            set(re.findall(r'r\._field == "(\w+)"', query)))


def test_dashboards_query_what_the_recorder_writes() -> None:
    sys.path.insert(0, str(DEPLOY / "grafana"))
    import build_dashboards

    files = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert [f.stem for f in files] == sorted(build_dashboards.DASHBOARDS)
    seen: set[tuple[str, str]] = set()
    for f in files:
        assert f.read_text() == build_dashboards.render(f.stem), "run deploy/grafana/build_dashboards.py"
        dash = json.loads(f.read_text())
        assert dash["uid"] == f.stem and dash["panels"]
        for p in dash["panels"]:
            assert p["datasource"]["uid"] == "p1-influxdb"
            (target,) = p["targets"]
            measurements, fields = flux_fields(target["query"])
            assert len(measurements) == 1 and fields, p["title"]
            (m,) = measurements
            assert m in MEASUREMENTS, (p["title"], m)
            assert fields <= set(MEASUREMENTS[m]), (p["title"], fields - set(MEASUREMENTS[m]))
            seen |= {(m, fld) for fld in fields}
    wanted = {("reading", "import_w"), ("reading", "l1_import_w"), ("reading", "import_t1_kwh"),
              ("quarter", "avg_w"), ("quarter", "threshold_w"), ("month", "peak_w"),
              ("month", "billed_w"), ("month", "cost_eur_year"), ("output", "pct"),
              ("output", "on"), ("gas", "gas_m3"), ("water", "water_m3")}
    assert wanted <= seen, wanted - seen
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml")
                        .read_text())["datasources"][0]
    assert ds["uid"] == "p1-influxdb" and ds["jsonData"]["version"] == "Flux"
