"""recorder with its InfluxDB-compatible server down for 10 simulated minutes: no point lost.

600 readings (one a simulated second) and 600 peaks arrive while VictoriaMetrics (the
InfluxDB v2 write API) is stopped; it comes back; every point is there with its exact
value and meter time. The soak version kills the recorder (SIGKILL) during the outage too.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
from test_recorder_service import BASE_S, RecorderProc, reading

from p1common.topics import Topics
from support import Mosquitto, Subscriber, wait_for


def _outage(broker: Mosquitto, vm, tmp: Path, seconds: int, kill: bool) -> None:  # type: ignore[no-untyped-def]
    prefix = "rel" + uuid.uuid4().hex[:8]
    t = Topics(prefix)
    rec = RecorderProc(broker, vm, tmp, prefix)
    pub = Subscriber(broker.port)
    rec.start()
    try:
        pub.publish(t.reading("home"), reading("home", 0))
        wait_for(lambda: len(vm.export().get("reading_import_w{site=home}", [])) == 1, 15)
        vm.stop()
        for i in range(1, seconds + 1):
            pub.client.publish(t.reading("home"), json.dumps(reading("home", i)),
                               qos=1)
        wait_for(lambda: rec.metric("p1_recorder_buffered_points") == float(seconds), 30)
        if kill:
            rec.stop(signal.SIGKILL)
            rec.start()
        vm.start()
        want = [((BASE_S + i) * 1000, 1000.0 + i) for i in range(seconds + 1)]
        wait_for(lambda: vm.export().get("reading_import_w{site=home}", []) == want, 60)
        assert rec.metric("p1_recorder_buffered_points") == 0.0
    finally:
        if rec.proc:
            rec.stop()
        pub.close()


def test_influx_down_ten_simulated_minutes(mosquitto: Mosquitto, vm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _outage(mosquitto, vm, tmp_path, 600, kill=False)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_soak_influx_down_an_hour_and_recorder_killed(mosquitto: Mosquitto, vm,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path) -> None:
    _outage(mosquitto, vm, tmp_path, 3600, kill=True)
