"""MQTT security with a real Mosquitto: users and ACLs from deploy/mosquitto/mkusers.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support import REPO, Mosquitto, Subscriber, mosquitto_bin, wait_for

MKUSERS = REPO / "deploy" / "mosquitto" / "mkusers.py"
DEVICES = ["home:output:boiler-sw:boiler", "home:output:pump", "home:monitor:hall",
           "other:output:boiler-other:boiler", "home:dongle:meter-dongle"]


def mkusers(out: Path, *extra: str) -> dict[str, str]:
    args = [sys.executable, str(MKUSERS), "--out", str(out)]
    for spec in DEVICES:
        args += ["--device", spec]
    subprocess.run(args + list(extra), check=True, capture_output=True, text=True, timeout=60)
    creds = {}
    for line in (out / "credentials.env").read_text().splitlines():
        user, _, password = line.partition("=")
        creds[user] = password
    return creds


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    if not mosquitto_bin():
        pytest.skip("mosquitto is not installed")
    out = tmp_path_factory.mktemp("mqttsec")
    creds = mkusers(out)
    broker = Mosquitto(render=lambda port, where: shipped_config(port, where, out))
    yield broker, creds
    broker.close()


SHIPPED = REPO / "deploy" / "mosquitto" / "mosquitto.conf"


def shipped_config(port: int, where: Path, generated: Path) -> str:
    """deploy/mosquitto/mosquitto.conf as shipped, with only its paths and port pointed
    at this test: the listener on 127.0.0.1:<port>, the mkusers.py output, a data dir."""
    text = SHIPPED.read_text()
    assert text.count("\nlistener 1883\n") == 1
    text = text.replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
    text = text.replace("/mosquitto/config/generated/", f"{generated}/")
    (where / "data").mkdir(exist_ok=True)
    return text.replace("/mosquitto/data/", f"{where / 'data'}/")


def test_k3s_broker_config_is_the_same_file() -> None:
    k3s = REPO / "deploy" / "k3s" / "base" / "mosquitto" / "mosquitto.conf"
    assert k3s.read_text() == SHIPPED.read_text()


def test_a_device_cannot_take_a_service_id_nor_write_its_status(secured: tuple) -> None:
    """boiler-sw connecting as client id "load-controller" must not kick the real one off,
    and its retained "offline" on p1/status/load-controller must not reach anybody."""
    broker, creds = secured
    drops: list[int] = []
    service = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="load-controller", protocol=mqtt.MQTTv311)
    service.username_pw_set("load-controller", creds["load-controller"])
    service.on_disconnect = lambda c, u, f, rc, p: drops.append(rc.value)  # type: ignore[misc]
    connected = threading.Event()
    service.on_connect = lambda c, u, f, rc, p: connected.set()  # type: ignore[misc]
    service.connect("127.0.0.1", broker.port)
    service.loop_start()
    spy = as_user(broker, creds, "p1-recorder", "p1/status/#")
    try:
        assert connected.wait(5)
        service.publish("p1/status/load-controller", "online", qos=1, retain=True).wait_for_publish(5)
        spy.wait("p1/status/load-controller", 1)
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="load-controller",
                               protocol=mqtt.MQTTv311)
        intruder.username_pw_set("boiler-sw", creds["boiler-sw"])
        intruder.connect("127.0.0.1", broker.port)
        intruder.loop_start()
        intruder.publish("p1/status/load-controller", "offline", qos=1, retain=True).wait_for_publish(5)
        # barrier: the intruder's own status (allowed: its id is its user name) arrives after
        intruder.publish("p1/status/boiler-sw", "online", qos=1).wait_for_publish(5)
        spy.wait("p1/status/boiler-sw", 1)
        intruder.loop_stop()
        intruder.disconnect()
        # barrier on the service's connection: it still publishes and is heard
        service.publish("p1/status/load-controller", "still-here", qos=1).wait_for_publish(5)
        spy.wait("p1/status/load-controller", 2)
        assert [m.payload for m in spy.on("p1/status/load-controller")] == [b"online", b"still-here"]
        assert drops == []
        late = as_user(broker, creds, "p1-recorder", "p1/status/load-controller")
        try:
            assert [m.payload for m in late.wait("p1/status/load-controller", 1)] == [b"online"]
        finally:
            late.close()
    finally:
        service.loop_stop()
        service.disconnect()
        spy.close()


def connect_rc(port: int, username: str | None, password: str | None) -> int:
    """The CONNACK code the broker answers (0 = accepted, 4 = bad credentials, 5 = refused)."""
    result: list[int] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, password)

    def on_connect(c, u, f, rc, p):  # type: ignore[no-untyped-def]
        result.append(rc.value)
        done.set()

    def on_disconnect(c, u, f, rc, p):  # type: ignore[no-untyped-def]
        if not result:
            result.append(rc.value)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def as_user(broker: Mosquitto, creds: dict[str, str], user: str, *topics: str) -> Subscriber:
    return Subscriber(broker.port, *topics, username=user, password=creds[user])


def test_anonymous_and_wrong_password_refused(secured: tuple) -> None:
    broker, creds = secured
    assert connect_rc(broker.port, None, None) != 0
    assert connect_rc(broker.port, "boiler-sw", "not-the-password") != 0
    assert connect_rc(broker.port, "nobody", "x") != 0
    assert connect_rc(broker.port, "boiler-sw", creds["boiler-sw"]) == 0


def test_device_writes_only_its_own_state(secured: tuple) -> None:
    broker, creds = secured
    spy = as_user(broker, creds, "p1-recorder", "p1/#")
    dev = as_user(broker, creds, "boiler-sw")
    try:
        forbidden = [
            "p1/home/output/pump/state",       # another output of the same site
            "p1/other/output/boiler/state",    # the same output id on another site
            "p1/home/output/boiler/set",       # commands are the controller's
            "p1/home/reading",                 # a service's topic
            "p1/config/home/outputs",          # configuration is the web's
            "p1/status/load-controller",       # another client's status
        ]
        tag = uuid.uuid4().hex
        for topic in forbidden:
            dev.publish(topic, {"forged": tag})
        dev.publish("p1/home/output/boiler/state", {"v": 1, "on": True, "tag": tag})
        # the positive control: its own status, published last on the same connection. The
        # broker handles one client's packets in order and the spy gets what it lets through
        # in that order: once the status is here, a forbidden message let through would be too
        dev.publish("p1/status/boiler-sw", "online")
        spy.wait("p1/status/boiler-sw", 1)
        seen = {m.topic for m in spy.messages if tag.encode() in m.payload}
        assert seen == {"p1/home/output/boiler/state"}
    finally:
        dev.close()
        spy.close()


def test_device_reads_only_its_own_set_and_config(secured: tuple) -> None:
    broker, creds = secured
    dev = as_user(broker, creds, "boiler-sw", "p1/home/output/boiler/set",
                  "p1/home/output/pump/set", "p1/other/output/boiler/set", "p1/config/home/outputs",
                  "p1/home/reading")
    ctl = as_user(broker, creds, "load-controller")
    web = as_user(broker, creds, "p1-web")
    reader = as_user(broker, creds, "p1-reader")
    try:
        reader.publish("p1/home/reading", {"import_w": 1})
        ctl.publish("p1/home/output/pump/set", {"on": True})
        ctl.publish("p1/other/output/boiler/set", {"on": True})
        ctl.publish("p1/home/output/boiler/set", {"on": True, "seq": 1})
        # the positive control: the configuration, published last (each publish above was
        # acknowledged before the next was sent, so the broker handled them in this order and
        # queued what the device may read in this order): once it is here, nothing is on its way
        web.publish("p1/config/home/outputs", {"v": 1, "outputs": []})
        dev.wait("p1/config/home/outputs", 1)
        assert sorted(m.topic for m in dev.messages) == [
            "p1/config/home/outputs", "p1/home/output/boiler/set"]
    finally:
        for c in (dev, ctl, web, reader):
            c.close()


def test_services_write_only_their_own_topics(secured: tuple) -> None:
    broker, creds = secured
    spy = as_user(broker, creds, "p1-web", "p1/#")  # one connection per user: client id = user
    forecaster = as_user(broker, creds, "peak-forecaster")
    reader = as_user(broker, creds, "p1-reader")
    recorder = as_user(broker, creds, "p1-recorder")
    try:
        tag = uuid.uuid4().hex
        forecaster.publish("p1/home/reading", {"tag": tag})          # not its topic
        forecaster.publish("p1/home/output/boiler/set", {"tag": tag})
        recorder.publish("p1/home/peak", {"tag": tag})                # the recorder only reads
        reader.publish("p1/home/peak", {"tag": tag})
        forecaster.publish("p1/home/peak", {"tag": tag, "ok": 1})
        # the positive control: an allowed message published last (each publish above was
        # acknowledged before the next was sent): once it is here, nothing is on its way
        reader.publish("p1/home/reading", {"tag": tag, "ok": 1})
        wait_for(lambda: [m for m in spy.on("p1/home/reading")
                          if tag.encode() in m.payload and m.json().get("ok") == 1])
        tagged = [(m.topic, m.json().get("ok")) for m in spy.messages if tag.encode() in m.payload]
        assert sorted(tagged) == [("p1/home/peak", 1), ("p1/home/reading", 1)]
    finally:
        for c in (spy, forecaster, reader, recorder):
            c.close()


def test_dongle_writes_only_its_sites_raw_which_p1_reader_reads(secured: tuple) -> None:
    """The ESP P1 dongle (SITE:dongle:ID) may write p1/SITE/raw and nothing else; p1-reader
    (P1_SOURCE=mqtt) reads it; the peak-forecaster reads control (the learner's sheddable part)."""
    broker, creds = secured
    reader = as_user(broker, creds, "p1-reader", "p1/+/raw")
    forecaster = as_user(broker, creds, "peak-forecaster", "p1/+/control")
    dongle = as_user(broker, creds, "meter-dongle")
    ctl = as_user(broker, creds, "load-controller")
    try:
        tag = uuid.uuid4().hex
        dongle.publish("p1/home/reading", {"tag": tag})       # not its topic
        dongle.publish("p1/other/raw", {"tag": tag})           # not its site
        dongle.publish("p1/home/output/boiler/set", {"tag": tag})
        ctl.publish("p1/home/control", {"tag": tag, "ok": 1})
        dongle.publish("p1/home/raw", {"tag": tag, "ok": 1})   # allowed, published last
        wait_for(lambda: [m for m in reader.on("p1/home/raw") if tag.encode() in m.payload])
        wait_for(lambda: [m for m in forecaster.on("p1/home/control") if tag.encode() in m.payload])
        got = sorted(m.topic for m in reader.messages if tag.encode() in m.payload)
        assert got == ["p1/home/raw"]
    finally:
        for c in (reader, forecaster, dongle, ctl):
            c.close()


def test_a_dongle_spec_takes_no_output_id(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(MKUSERS), "--out", str(tmp_path), "--device",
                          "home:dongle:d1:extra"], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "SITE:dongle:DEVICE_ID" in res.stderr


def test_rerun_keeps_passwords_and_rotate_changes_them(tmp_path: Path) -> None:
    first = mkusers(tmp_path)
    again = mkusers(tmp_path)
    assert first == again
    assert set(first) >= {"p1-reader", "p1-recorder", "boiler-sw", "pump", "hall"}
    rotated = mkusers(tmp_path, "--rotate")
    assert all(rotated[u] != first[u] for u in first)
    env = (tmp_path / "env" / "p1-recorder.env").read_text()
    assert env == f"MQTT_URL=mqtt://p1-recorder:{rotated['p1-recorder']}@mosquitto:1883\n" \
                  "MQTT_CLIENT_ID=p1-recorder\n"
    assert (tmp_path / "passwd").stat().st_mode & 0o007 == 0
    assert (tmp_path / "credentials.env").stat().st_mode & 0o077 == 0
    assert "@127.0.0.1:1883" in (tmp_path / "env" / "bridge-multicast.env").read_text()
    wait_for(lambda: (tmp_path / ".gitignore").read_text().strip().endswith("*"))


# -- the site-name rule: mkusers.py keeps a copy (it runs without the stack's packages) --------
def _mkusers_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkusers_copy_check", MKUSERS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mkusers_copies_of_the_rules_equal_the_originals() -> None:
    from p1common import payloads, topics
    from p1web import models

    mk = _mkusers_module()
    assert (mk.SITE_PATTERN, mk.SITE_RULE) == (topics.SITE_PATTERN, topics.SITE_RULE)
    assert mk.OUTPUT_ID_PATTERN == payloads.OUTPUT_ID_PATTERN
    assert mk.ID_RE.pattern == models.DEVICE_PATTERN


SITES = ["home", "a", "flat-2_b", "9" * 63,  # accepted
         "Home", "ho.me", "..", "-home", "_home", "home\n", "ho\x1bme", "ho me", "9" * 64, ""]


@pytest.mark.parametrize("site", SITES, ids=[repr(s) for s in SITES])
def test_mkusers_takes_exactly_the_sites_p1_site_takes(tmp_path: Path, site: str) -> None:
    from p1common.settings import SettingsError, check_slug

    try:
        check_slug(site, "P1_SITE")
        p1_site_ok = True
    except SettingsError:
        p1_site_ok = False
    r = subprocess.run([sys.executable, str(MKUSERS), "--out", str(tmp_path / "out"),
                        f"--device={site}:output:boiler"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode == 0) is p1_site_ok, r.stderr
    assert p1_site_ok is (site in SITES[:4])  # the rule as the docs state it
    if not p1_site_ok:
        assert r.stderr.strip() == (f"--device {site + ':output:boiler'!r}: site {site!r}: use 1-63 "
                                    "lower-case letters, digits, '-' or '_', starting with a "
                                    "letter or digit")


def test_ev_gateway_and_its_last_will_with_the_shipped_acl(secured: tuple, tmp_path: Path) -> None:
    """ev-gateway as deployed: its own user, and a second user for the connection whose last
    will pauses the evcc loadpoint (the broker takes the user name as client id: with one
    user the two connections would displace each other). evcc's own user sees the writes,
    and the will when the gateway is killed."""
    import json
    import os
    import signal

    broker, creds = secured
    url = lambda user: f"mqtt://{user}:{creds[user]}@127.0.0.1:{broker.port}"  # noqa: E731
    web = as_user(broker, creds, "p1-web")
    ctl = as_user(broker, creds, "load-controller")
    evcc = as_user(broker, creds, "evcc", "evcc/loadpoints/7/#")
    spy = as_user(broker, creds, "p1-recorder", "p1/acl-ev/#")
    outputs = {"v": 1, "outputs": [{"id": "car", "kind": "ev", "mode": "ev", "rated_w": 11040,
                                    "phases": 3, "charger": "evcc", "charger_ref": "7"}]}
    web.publish("p1/config/acl-ev/outputs", json.dumps(outputs), qos=1, retain=True)
    env = {**os.environ, "MQTT_URL": url("ev-gateway"), "MQTT_CLIENT_ID": "ev-gateway",
           "EVGW_EVCC_WILL_MQTT_URL": url("ev-gateway-will"), "P1_SITE": "acl-ev",
           "EVGW_OCPP_PORT": "0", "P1_STATE_DIR": str(tmp_path)}
    log = tmp_path / "evgw.log"
    with log.open("wb") as fh:
        gw = subprocess.Popen([str(Path(sys.executable).parent / "ev-gateway")], env=env,
                              stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "pause-on-failure connection up" in log.read_text(), 20)
        ctl.publish("p1/acl-ev/output/car/set", json.dumps(
            {"v": 1, "ts": "2026-01-15T22:00:00+01:00", "seq": 1, "ttl_s": 3600,
             "current_a": 10, "phases": 3}), qos=1)
        writes = lambda: [(m.topic, m.payload) for m in evcc.on("evcc/loadpoints/7/+/set")]  # noqa: E731
        wait_for(lambda: writes() == [
            ("evcc/loadpoints/7/mode/set", b"off"),
            ("evcc/loadpoints/7/phasesConfigured/set", b"3"),
            ("evcc/loadpoints/7/maxCurrent/set", b"10"),
            ("evcc/loadpoints/7/mode/set", b"now")], 20)
        # the gateway's own connection stayed: its state for the output got through the ACL
        wait_for(lambda: any(json.loads(m.payload).get("current_a") == 10.0
                             for m in spy.on("p1/acl-ev/output/car/state")), 10)
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        wait_for(lambda: writes()[-1] == ("evcc/loadpoints/7/mode/set", b"off")
                 and len(writes()) == 5, 30)
    finally:
        if gw.poll() is None:
            gw.kill()
        web.publish("p1/config/acl-ev/outputs", b"", qos=1, retain=True)
        for c in (web, ctl, evcc, spy):
            c.close()
    assert "lost the broker" not in log.read_text()  # not displaced by its own will connection
