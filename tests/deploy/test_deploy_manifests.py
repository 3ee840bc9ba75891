"""Offline checks of deploy/: kustomize builds, Kubernetes schemas, yamllint, compose, hadolint,
shellcheck, the InfluxDB set-up (buckets, task, tokens), Grafana dashboards against what the
recorder writes, and every Flux script type-checked by InfluxData's Flux front end."""

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
INIT = DEPLOY / "compose" / "influxdb-init"
FLUXCHECK = Path(__file__).resolve().parent / "fluxcheck"
SERVICES = ["p1-reader", "peak-forecaster", "load-controller", "bridge-multicast", "p1-web",
            "p1-recorder", "ev-gateway"]


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
    (secrets / "stack.env").write_text("INFLUX_ADMIN_TOKEN=t0ken\nINFLUX_ADMIN_PASSWORD=pw1\n"
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
             (INIT / "init.sh", base / "influxdb-init" / "init.sh"),
             (INIT / "downsample.flux", base / "influxdb-init" / "downsample.flux"),
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
    assert set(svcs) == {*SERVICES, "mosquitto", "influxdb", "influxdb-init", "grafana"}
    for name in SERVICES:
        assert svcs[name]["command"][0] == name
        assert svcs[name]["env_file"] == [f"../mosquitto/generated/env/{name}.env"]
        assert svcs[name]["read_only"] is True and svcs[name]["cap_drop"] == ["ALL"]
    assert svcs["p1-reader"]["devices"] == ["${P1_SERIAL_DEVICE:-/dev/ttyUSB0}:/dev/ttyUSB0"]
    # the raw telegram server is off unless .env sets it, and the host publishes it on
    # loopback unless told otherwise (docs/deployment.md)
    assert svcs["p1-reader"]["environment"]["P1_SERVE_RAW"] == "${P1_SERVE_RAW:-}"
    assert svcs["p1-reader"]["ports"] == ["${P1_RAW_HOST_IP:-127.0.0.1}:2323:2323"]
    example = (compose.parent / ".env.example").read_text().splitlines()
    assert "P1_SERVE_RAW=" in example and "P1_RAW_HOST_IP=127.0.0.1" in example
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
    wanted = {("reading", "import_w"), ("reading", "l1_import_w"), ("reading", "import_kwh"),
              ("reading", "export_kwh"), ("reading", "tariff_low"),
              ("quarter", "avg_w"), ("quarter", "threshold_w"), ("month", "peak_w"),
              ("month", "billed_w"), ("month", "cost_eur_year"), ("output", "pct"),
              ("output", "on"), ("gas", "gas_m3"), ("water", "water_m3")}
    assert wanted <= seen, wanted - seen
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml")
                        .read_text())["datasources"][0]
    assert ds["uid"] == "p1-influxdb" and ds["jsonData"]["version"] == "Flux"


# -- InfluxDB: buckets, retention, the downsampling task, tokens -----------------------------------

def dashboards_module() -> Any:
    sys.path.insert(0, str(DEPLOY / "grafana"))
    import build_dashboards

    return build_dashboards


def test_compose_influxdb_init_tokens_and_retention() -> None:
    compose = DEPLOY / "compose" / "compose.yaml"
    svcs = yaml.safe_load(compose.read_text())["services"]
    raw_days = dashboards_module().RAW_RETENTION_DAYS
    influx = svcs["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_RETENTION"] == f"${{INFLUX_RETENTION:-{raw_days}d}}"
    assert "/usr/share/zoneinfo:/usr/share/zoneinfo:ro" in svcs["influxdb"]["volumes"]
    assert svcs["influxdb"]["healthcheck"]["test"][:3] == ["CMD", "influx", "ping"]
    env_example = (compose.parent / ".env.example").read_text()
    assert f"\nINFLUX_RETENTION={raw_days}d\n" in env_example and "\nINFLUX_TOKEN=" not in env_example
    # the admin token: InfluxDB and the init service, nobody else
    holders = {name for name, svc in svcs.items() if "INFLUX_ADMIN_TOKEN" in json.dumps(svc)}
    assert holders == {"influxdb", "influxdb-init"}
    init = svcs["influxdb-init"]
    assert init["image"] == svcs["influxdb"]["image"] == "influxdb:2.7"  # its influx CLI
    assert init["entrypoint"] == ["/bin/bash", "/p1-init/init.sh"] and init["restart"] == "no"
    assert init["depends_on"] == {"influxdb": {"condition": "service_healthy"}}
    assert init["environment"]["INFLUX_TOKEN"].startswith("${INFLUX_ADMIN_TOKEN:?")
    assert init["environment"]["P1_TOKEN_DIR"] == "/tokens"
    assert set(init["volumes"]) == {"./influxdb-init:/p1-init:ro", "grafana-influx-token:/tokens/grafana",
                                    "recorder-influx-token:/tokens/recorder"}
    assert init["read_only"] is True and init["cap_drop"] == ["ALL"] and init["cap_add"] == ["CHOWN"]
    done = {"condition": "service_completed_successfully"}
    grafana = svcs["grafana"]
    assert grafana["depends_on"] == {"influxdb-init": done}
    assert "INFLUX_TOKEN" not in grafana["environment"]
    assert "grafana-influx-token:/etc/grafana/influx:ro" in grafana["volumes"]
    rec = svcs["p1-recorder"]
    assert rec["depends_on"]["influxdb-init"] == done
    assert rec["environment"]["INFLUX_TOKEN_FILE"] == "/run/influx/token"
    assert "INFLUX_TOKEN" not in rec["environment"]
    assert rec["volumes"] == ["p1-state:/var/lib/p1", "recorder-influx-token:/run/influx:ro"]


def test_grafana_datasource_reads_the_read_only_token_from_a_file() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml")
                        .read_text())["datasources"][0]
    assert ds["type"] == "influxdb" and ds["access"] == "proxy"
    assert ds["jsonData"] == {"version": "Flux", "organization": "${INFLUX_ORG}",
                              "defaultBucket": "${INFLUX_BUCKET}", "timeInterval": "1s"}
    # Grafana expands $__file{} in provisioning files: the file the init service/Job writes
    assert ds["secureJsonData"] == {"token": "$__file{/etc/grafana/influx/token}"}


def test_k3s_influxdb_init_job_rbac_and_token_secrets(overlay_build: list) -> None:
    raw_days = dashboards_module().RAW_RETENTION_DAYS
    job = by_kind(overlay_build, "Job")["influxdb-init"]
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 300 and pod["restartPolicy"] == "OnFailure"
    assert pod["serviceAccountName"] == "influxdb-init" and pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["image"] == "influxdb:2.7" and c["command"] == ["/bin/bash", "/p1-init/init.sh"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["INFLUX_TOKEN"] == {"secretKeyRef": {"name": next(
        n for n in by_kind(overlay_build, "Secret") if n.startswith("p1-secrets-")), "key": "INFLUX_ADMIN_TOKEN"}}
    assert env["P1_K8S_SECRETS"] == "1" and env["INFLUX_HOST"] == "http://influxdb:8086"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    cms = {re.sub(r"-[a-z0-9]{10}$", "", n): cm for n, cm in by_kind(overlay_build, "ConfigMap").items()}
    assert cms["influxdb-init"]["data"] == {"init.sh": (INIT / "init.sh").read_text(),
                                            "downsample.flux": (INIT / "downsample.flux").read_text()}
    assert cms["p1-settings"]["data"]["INFLUX_RETENTION"] == f"{raw_days}d"
    # RBAC: the two token Secrets, read and replaced; create (not limitable to a name); nothing more
    role = by_kind(overlay_build, "Role")["influxdb-init"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"],
         "resourceNames": ["influx-grafana-token", "influx-recorder-token"], "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    binding = by_kind(overlay_build, "RoleBinding")["influxdb-init"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "influxdb-init"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "influxdb-init", "namespace": "p1"}]
    assert "influxdb-init" in by_kind(overlay_build, "ServiceAccount")
    # the admin token: InfluxDB and the Job only
    holders = {d["metadata"]["name"] for d in overlay_build
               if d["kind"] in ("Deployment", "Job") and "INFLUX_ADMIN_TOKEN" in json.dumps(d)}
    assert holders == {"influxdb", "influxdb-init"}
    assert "INFLUX_TOKEN" not in json.dumps(by_kind(overlay_build, "Deployment")["grafana"]).replace(
        "INFLUX_TOKEN_FILE", "")
    deps = by_kind(overlay_build, "Deployment")

    def token_mount(name: str) -> tuple[str, dict[str, Any]]:
        pod = deps[name]["spec"]["template"]["spec"]
        (vol,) = [v for v in pod["volumes"] if v["name"] == "influx-token"]
        (mount,) = [m for c in pod["containers"] for m in c["volumeMounts"] if m["name"] == "influx-token"]
        return mount["mountPath"], vol["secret"]

    assert token_mount("grafana") == ("/etc/grafana/influx",
                                      {"secretName": "influx-grafana-token", "defaultMode": 0o440})
    assert token_mount("p1-recorder") == ("/run/influx",
                                          {"secretName": "influx-recorder-token", "defaultMode": 0o440})
    (rec,) = deps["p1-recorder"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "INFLUX_TOKEN_FILE", "value": "/run/influx/token"} in rec["env"]
    influx = deps["influxdb"]["spec"]["template"]["spec"]
    assert {"name": "zoneinfo", "hostPath": {"path": "/usr/share/zoneinfo", "type": "Directory"}} \
        in influx["volumes"]


def test_init_script_uses_the_documented_influx_cli_commands() -> None:
    """The influx CLI 2.x commands as documented (influx bucket create --retention, influx task
    create --file, influx auth create --read-bucket/--write-bucket with bucket IDs), and
    shellcheck finds nothing."""
    text = (INIT / "init.sh").read_text()
    for command in ('influx bucket list --org "$INFLUX_ORG" --name "$RAW" --hide-headers',
                    'influx bucket create --org "$INFLUX_ORG" --name "$LONG" --retention "$LONG_RETENTION"',
                    'influx task create --org "$INFLUX_ORG" --file "$WORK/downsample.flux"',
                    'influx task update --id "$task_id" --file "$WORK/downsample.flux"',
                    'influx auth create --org "$INFLUX_ORG" --description "$desc" "$@"',
                    'ensure_token grafana "${P1_GRAFANA_UID:-472}" --read-bucket "$raw_id" --read-bucket "$long_id"',
                    'ensure_token recorder "${P1_RECORDER_UID:-10001}" --write-bucket "$raw_id" '
                    '--write-bucket "$long_id"'):
        assert command in text, command
    assert "--all-access" not in text and "--operator" not in text
    res = run(tool("shellcheck"), str(INIT / "init.sh"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_downsample_task_aggregates_every_field_once_the_right_way() -> None:
    """Each field the recorder writes to the raw bucket goes through exactly one of the task's
    three pipelines: counters and states 'last', level_code 'max', the rest 'mean'."""
    text = (INIT / "downsample.flux").read_text()
    assert re.search(r"^option task = \{name: \"p1-downsample-1m\", every: 5m, offset: 1m\}$", text, re.M)
    blocks = text.split("from(bucket: raw)")[1:]
    assert len(blocks) == 3
    fns = [re.search(r"aggregateWindow\(every: 1m, fn: (\w+), timeSrc: \"_start\", createEmpty: false\)",
                     b).group(1) for b in blocks]  # type: ignore[union-attr]
    assert fns == ["last", "max", "mean"]
    assert all("|> to(bucket: long, org: org)" in b for b in blocks)
    regex = re.search(r"r\._field =~ /(.+?)/", blocks[0]).group(1)  # type: ignore[union-attr]
    assert f"r._field !~ /{regex}/" in blocks[2]
    last_names = set(re.findall(r'r\._field == "(\w+)"', blocks[0]))
    assert last_names == set(re.findall(r'r\._field != "(\w+)"', blocks[2])) - {"level_code"}
    assert re.findall(r'r\._field == "(\w+)"', blocks[1]) == ["level_code"]

    def pipeline(field: str) -> str:
        if field == "level_code":
            return "max"
        return "last" if re.search(regex, field) or field in last_names else "mean"

    raw_fields = {f for m, fields in MEASUREMENTS.items() if m not in ("quarter", "month") for f in fields}
    got = {f: pipeline(f) for f in raw_fields}
    counters = {"import_t1_kwh", "import_kwh", "export_t2_kwh", "reactive_import_kvarh", "gas_m3",
                "water_m3", "heat_gj", "power_failures", "long_power_failures", "l2_voltage_sags",
                "l3_voltage_swells", "tariff", "tariff_low", "breaker", "on", "override", "seq"}
    assert {f for f, fn in got.items() if fn == "last"} == counters | {
        f for f in raw_fields if f.endswith(("_kwh", "_kvarh", "_sags", "_swells"))}
    assert got["import_w"] == got["l1_voltage_v"] == got["avg_w"] == got["pct"] == "mean"
    assert got["level_code"] == "max"


# -- the dashboards: buckets, daily energy, month panels, labels -------------------------------------

def dashboard_panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(f.read_text())
        out += [(dash["uid"], p) for p in dash["panels"]]
    return out


def test_each_query_reads_the_bucket_its_range_needs() -> None:
    b = dashboards_module()
    assert b.LONG_ONLY == ("quarter", "month")  # what the recorder sends to the long-term bucket
    choose = (f"src = if start >= date.sub(d: {b.RAW_RETENTION_DAYS - 1}d, from: now()) "
              'then v.defaultBucket else v.defaultBucket + "_long"\n')
    for uid, p in dashboard_panels():
        query = p["targets"][0]["query"]
        (m,) = flux_fields(query)[0]
        assert "from(bucket: src)" in query and query.count("from(") == 1, (uid, p["title"])
        assert "range(start: start, stop: v.timeRangeStop)" in query
        if m in ("quarter", "month"):
            assert 'src = v.defaultBucket + "_long"\n' in query, p["title"]
        else:
            assert choose in query, p["title"]
        # Grafana replaces every <word>.<bucket|defaultBucket|timeRangeStart|...> in the text
        assert not re.search(r"[a-zA-Z]\.bucket\b", query)


def test_daily_panels_take_each_days_last_value_and_the_difference() -> None:
    daily = [(uid, p) for uid, p in dashboard_panels() if "per day" in p["title"] and uid == "p1-energy"]
    assert [p["title"] for _, p in daily] == ["Electricity per day", "Electricity per day, low and normal tariff",
                                              "Gas per day", "Water per day"]
    for _, p in dashboard_panels():
        assert "spread" not in p["targets"][0]["query"], p["title"]
    for _, p in daily:
        query = p["targets"][0]["query"]
        # a day before the range: the first day's base; local days of the dashboard's time zone
        assert "start = date.sub(d: 1d, from: v.timeRangeStart)\n" in query
        assert 'tz = if "${__timezone}" == "utc"' in query and "loc = timezone.location(name: tz)" in query
        # the 15-minute step has no location (pushed down to storage), the daily one has
        assert '|> aggregateWindow(every: 15m, fn: last, timeSrc: "_start", createEmpty: false)' in query
        assert "difference(" in query and "nonNegative: true" in query
        if "tariff" in p["title"]:
            assert "fn: sum, location: loc" in query and "r._time > start" in query
        else:
            assert ('|> aggregateWindow(every: 1d, fn: last, location: loc, timeSrc: "_start", '
                    'createEmpty: false)\n  |> difference(nonNegative: true)') in query


def test_month_panels_show_13_months_whatever_the_dashboard_range() -> None:
    month = [p for _, p in dashboard_panels() if flux_fields(p["targets"][0]["query"])[0] == {"month"}]
    assert [p["title"] for p in month] == ["Month peaks and billed average", "Capacity cost per year"]
    assert all(p["timeFrom"] == "13M" and p["hideTimeOverride"] is False for p in month)
    assert not [p for _, p in dashboard_panels() if "timeFrom" in p and p not in month]


def test_tariff_labels_come_from_tariff_low() -> None:
    text = " ".join(json.dumps(p) for _, p in dashboard_panels())
    # no tariff named by a guess from the register number (the old "T1 day / T2 night")
    assert not re.search(r"night|day tariff|\bday\)|1 day, 2|t[12] (day|night)", text, re.I)
    (tariff,) = [p for _, p in dashboard_panels() if p["title"].startswith("Tariff")]
    assert flux_fields(tariff["targets"][0]["query"]) == ({"reading"}, {"tariff_low"})
    assert tariff["fieldConfig"]["defaults"]["mappings"][0]["options"] == {
        "0": {"text": "normal", "color": "blue", "index": 0}, "1": {"text": "low", "color": "green", "index": 1}}
    (split,) = [p for _, p in dashboard_panels() if p["title"] == "Electricity per day, low and normal tariff"]
    query = split["targets"][0]["query"]
    for label in ("import, low tariff", "import, normal tariff", "export, low tariff", "export, normal tariff",
                  "import, tariff unknown", "export, tariff unknown"):
        assert f'_field: "{label}"' in query
    assert "import_t1_kwh" not in query and "import_t2_kwh" not in query


# -- Flux, type-checked offline -------------------------------------------------------------------------

def grafana_interpolate(query: str) -> str:
    """What Grafana sends InfluxDB: template variables, then its Flux macros (the rules of
    Grafana's pkg/tsdb/influxdb/flux/macros.go: every <word>.<macro> is replaced)."""
    query = query.replace("${site}", "home").replace("${__timezone}", "Europe/Brussels")
    values = {"timeRangeStart": "2026-01-01T00:00:00Z", "timeRangeStop": "2026-02-01T00:00:00Z",
              "windowPeriod": "1m0s", "defaultBucket": '"p1"', "bucket": '"p1"', "organization": '"p1"'}
    for obj, name in set(re.findall(r"([a-zA-Z]+)\.([a-zA-Z]+)", query)):
        if name in values:
            query = query.replace(f"{obj}.{name}", values[name])
    return query


def fluxcheck(scripts: dict[str, str]) -> dict[str, list[str]]:
    node = shutil.which("node")
    if not node or not (FLUXCHECK / "node_modules" / "@influxdata" / "flux-lsp-browser").exists():
        if os.environ.get("CI"):
            pytest.fail("the Flux checker is not installed; `make setup` installs it (node, npm ci)")
        pytest.skip("the Flux checker is not installed (`make setup`)")
    res = subprocess.run([node, str(FLUXCHECK / "fluxcheck.mjs")], capture_output=True, text=True, timeout=120,
                         input=json.dumps([{"name": k, "flux": v} for k, v in scripts.items()]))
    assert res.returncode == 0, res.stderr
    got: dict[str, list[str]] = json.loads(res.stdout)
    assert set(got) == set(scripts)
    return got


def test_every_flux_script_type_checks() -> None:
    scripts = {f"{uid}: {p['title']}": grafana_interpolate(p["targets"][0]["query"])
               for uid, p in dashboard_panels()}
    variable = dashboards_module().template()["list"][0]["query"]
    scripts["variable site"] = grafana_interpolate(variable)
    scripts["task"] = (INIT / "downsample.flux").read_text()
    errors = {name: errs for name, errs in fluxcheck(scripts).items() if errs}
    assert errors == {}
    # the check can fail: a wrong argument, an unknown function, a typo in a parameter name
    task = scripts["task"]
    bad = {"arg": task.replace("every: 1m, fn: mean", 'every: "1m", fn: mean'),
           "fn": task.replace("fn: max", "fn: maxx"),
           "param": scripts["p1-energy: Gas per day"].replace("location: loc", "locaton: loc")}
    got = fluxcheck(bad)
    assert any("expected duration but found string" in e for e in got["arg"]), got
    assert any("undefined identifier maxx" in e for e in got["fn"]), got
    assert any("unexpected argument locaton" in e for e in got["param"]), got


class InitRun:
    """deploy/compose/influxdb-init/init.sh run by bash as compose runs it, against the
    stand-in influx CLI of tests/deploy/fake_influx.py (no InfluxDB 2 server runs here)."""

    ADMIN = "admin-token-from-setup"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state_file = tmp / "influx-state.json"
        self.tokens = tmp / "tokens"
        self.raw_id = "0123456789abcdef"
        self.state_file.write_text(json.dumps({
            "host": "http://influxdb:8086", "admin_token": self.ADMIN, "org": "p1", "org_id": "fedcba9876543210",
            "buckets": [{"id": self.raw_id, "name": "p1", "retention": "infinite", "description": ""}],
            "tasks": [], "calls": [],
            "auths": [{"id": "aaaaaaaaaaaaaaaa", "description": "admin's Token", "token": self.ADMIN,
                       "perms": ["read:*", "write:*"]}]}))
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        influx = bin_dir / "influx"
        influx.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).parent / "fake_influx.py"}" "$@"\n')
        influx.chmod(0o755)
        (tmp / "work").mkdir()
        self.env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_INFLUX_STATE": str(self.state_file),
                    "INFLUX_HOST": "http://influxdb:8086", "INFLUX_TOKEN": self.ADMIN, "INFLUX_ORG": "p1",
                    "P1_RAW_BUCKET": "p1", "P1_TOKEN_DIR": str(self.tokens), "TMPDIR": str(tmp / "work"),
                    "P1_GRAFANA_UID": str(os.getuid()), "P1_RECORDER_UID": str(os.getuid()), "P1_WAIT_S": "0"}

    def __call__(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(INIT / "init.sh")], env={**self.env, **env}, capture_output=True,
                              text=True, timeout=60)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def auth(self, description: str) -> dict[str, Any]:
        (auth,) = [a for a in self.state["auths"] if a["description"] == description]
        return auth

    def token_file(self, name: str) -> str:
        path = self.tokens / name / "token"
        assert path.stat().st_mode & 0o777 == 0o600
        return path.read_text()


def test_init_script_creates_keeps_and_replaces(tmp_path: Path) -> None:
    run = InitRun(tmp_path)
    first = run()
    assert first.returncode == 0, first.stderr
    state = run.state
    (long,) = [b for b in state["buckets"] if b["name"] == "p1_long"]
    assert long["retention"] == "infinite"  # INFLUX_LONG_RETENTION 0 = forever
    assert "warning: p1 keeps raw data forever" in first.stderr and run.raw_id in first.stderr
    (task,) = state["tasks"]
    assert task["name"] == "p1-downsample-1m" and task["every"] == "5m"
    assert task["flux"] == (INIT / "downsample.flux").read_text().replace(
        "@RAW_BUCKET@", "p1").replace("@LONG_BUCKET@", "p1_long").replace("@ORG@", "p1")
    org = "orgs/fedcba9876543210/buckets"
    grafana, recorder = run.auth("p1 grafana"), run.auth("p1 recorder")
    assert grafana["perms"] == [f"read:{org}/{run.raw_id}", f"read:{org}/{long['id']}"]
    assert recorder["perms"] == [f"write:{org}/{run.raw_id}", f"write:{org}/{long['id']}"]
    assert run.token_file("grafana") == grafana["token"] + "\n"
    assert run.token_file("recorder") == recorder["token"] + "\n"
    assert run.ADMIN not in run.token_file("grafana") + run.token_file("recorder")
    assert "restart" not in first.stderr  # nothing read an older token

    again = run()  # the next `docker compose up`
    assert again.returncode == 0, again.stderr
    assert [len(run.state[k]) for k in ("buckets", "tasks", "auths")] == [2, 1, 3]
    assert run.auth("p1 grafana") == grafana and run.token_file("grafana") == grafana["token"] + "\n"
    assert again.stderr.count("still valid: kept") == 2
    assert ["task", "update", "--id", task["id"], "--file", str(tmp_path / "work" / "downsample.flux"),
            "--hide-headers"] in run.state["calls"]

    state = run.state  # someone deleted Grafana's token in the InfluxDB UI
    state["auths"] = [a for a in state["auths"] if a["description"] != "p1 grafana"]
    run.state_file.write_text(json.dumps(state))
    third = run()
    assert third.returncode == 0, third.stderr
    new = run.auth("p1 grafana")
    assert new["token"] != grafana["token"] and new["perms"] == grafana["perms"]
    assert run.token_file("grafana") == new["token"] + "\n"
    assert "restart grafana" in third.stderr and "token 'p1 recorder' still valid: kept" in third.stderr

    wrong = run(INFLUX_TOKEN="not-the-admin-token")
    assert wrong.returncode == 1
    assert "no bucket p1 in organisation p1 at http://influxdb:8086" in wrong.stderr
    assert "unauthorized" in wrong.stderr
    bad_name = run(P1_RAW_BUCKET="p1/../x")
    assert bad_name.returncode == 1 and "'p1/../x': the organisation and bucket names" in bad_name.stderr
