import pytest

from p1common.settings import CommonSettings, SettingsError, parse_mqtt_url
from p1common.topics import TopicError, Topics


def test_defaults():
    s = CommonSettings.from_env({})
    assert (s.mqtt.host, s.mqtt.port, s.prefix, s.site, s.log_level) == ("127.0.0.1", 1883, "p1", "home", "INFO")


def test_mqtt_url_with_credentials_and_tls():
    u = parse_mqtt_url("mqtts://reader:s%40cret@broker.local")
    assert (u.scheme, u.host, u.port, u.username, u.password, u.tls) == (
        "mqtts", "broker.local", 8883, "reader", "s@cret", True)
    assert u.redacted() == "mqtts://reader:***@broker.local:8883"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MQTT_URL": "http://x"}, "MQTT_URL: scheme must be mqtt:// or mqtts://"),
        ({"MQTT_URL": "mqtt://:1883"}, "MQTT_URL: no host"),
        ({"MQTT_URL": "mqtt://h:99999"}, "MQTT_URL:"),
        ({"P1_SITE": "My Home"}, "P1_SITE: 'My Home' must be a short slug"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'LOUD' is not one of"),
        ({"METRICS_PORT": "abc"}, "METRICS_PORT: 'abc' is not an integer"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT: 70000 is above the maximum 65535"),
        ({"P1_TOPIC_PREFIX": "p1/#"}, "P1_TOPIC_PREFIX:"),
    ],
)
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError) as exc:
        CommonSettings.from_env(env)
    assert str(exc.value).startswith(message)


def test_topics_build_and_parse():
    t = Topics("p1")
    assert t.reading("home") == "p1/home/reading"
    assert t.output_set("home", "boiler") == "p1/home/output/boiler/set"
    assert t.config("home", "monitor", "mon1") == "p1/config/home/monitor/mon1"
    assert t.status("p1-reader-home") == "p1/status/p1-reader-home"
    p = t.parse("p1/home/output/boiler/state")
    assert (p.kind, p.site, p.ident) == ("output/state", "home", "boiler")
    assert t.parse("p1/home/peak/quarter").kind == "peak/quarter"
    assert t.parse("p1/config/home/outputs").kind == "config/outputs"
    assert t.parse("other/home/reading") is None
    assert t.parse("p1/home/unknown") is None
    with pytest.raises(TopicError):
        t.reading("a/b")
    with pytest.raises(TopicError):
        t.output_set("home", "+")


def test_shared_subscription_matches_like_its_filter():
    from p1common.mqtt import match_pattern

    assert match_pattern("$share/forecasters/p1/+/reading") == "p1/+/reading"
    assert match_pattern("p1/+/reading") == "p1/+/reading"


@pytest.mark.parametrize("payload", [b'{"net_w": NaN}', b'{"net_w": Infinity}', b'{"net_w": -1e999}'])
def test_non_finite_numbers_are_bad_payloads(payload):
    from p1common.mqtt import BadPayload, decode_json_object

    with pytest.raises(BadPayload):
        decode_json_object(payload)
    assert decode_json_object(b'{"net_w": -1.5e3}') == {"net_w": -1500.0}
