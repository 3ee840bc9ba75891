"""After a restart the last closed quarters and month record are sent again.

A SIGKILL can land after a quarter's state was written and before paho sent the
quarter: without this the quarter would never reach its consumers (found by
tests/reliability/test_rel_pf_kill.py). Consumers keep one copy per quarter start.
"""

from __future__ import annotations

import json
from pathlib import Path

from pf_support import Meter, feed, months, quarters
from test_pf_service import Service, publish_all

from support import Mosquitto, Subscriber, wait_for


def test_restart_resends_the_last_closed_records(mosquitto: Mosquitto, tmp_path: Path) -> None:
    m = Meter("2026-01-15T10:00:00+01:00", site="pfresend")
    rs = m.run(1800, 10, 10, 3600.0)
    _, ref = feed(rs)
    svc = Service(mosquitto, tmp_path, client_id="pf-resend")
    sub = Subscriber(mosquitto.port, "p1/pfresend/peak/#")
    svc.start()
    try:
        publish_all(sub, rs)
        wait_for(lambda: len(sub.on("p1/pfresend/peak/quarter")) == 2)
        svc.stop()
        state = json.loads((tmp_path / "peak-forecaster" / "pfresend.json").read_text())
        assert state["published"]["quarters"] == quarters(ref)
        sub.clear()
        svc.start()
        publish_all(sub, [m.reading(3600.0)])  # the site's first reading after the restart
        wait_for(lambda: len(sub.on("p1/pfresend/peak/quarter")) == 2)
        assert [x.json() for x in sub.on("p1/pfresend/peak/quarter")] == quarters(ref)
        assert sub.on("p1/pfresend/peak/month")[-1].json() == months(ref)[-1]
    finally:
        svc.stop()
        sub.close()
