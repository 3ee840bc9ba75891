"""Test-only hook for tests/ha: compile the recorder's statistics of the running 5 minutes now.

Home Assistant compiles short-term statistics every 5 minutes; the Energy dashboard's
validation reports a sensor without statistics ("statistics_not_defined"). Instead of
waiting up to 5 minutes, the test asks the recorder to run its own statistics task for
the current period (the same task its timer queues), then validates.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components import websocket_api
from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.tasks import StatisticsTask
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

DOMAIN = "p1_test_hooks"


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    websocket_api.async_register_command(hass, ws_compile_statistics)
    return True


@websocket_api.websocket_command({vol.Required("type"): "p1_test/compile_statistics"})
@websocket_api.require_admin
@websocket_api.async_response
async def ws_compile_statistics(
    hass: HomeAssistant, connection: websocket_api.ActiveConnection, msg: dict[str, Any]
) -> None:
    instance = get_instance(hass)
    now = dt_util.utcnow()
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    instance.queue_task(StatisticsTask(start, False))
    await instance.async_block_till_done()
    connection.send_result(msg["id"], {"start": start.isoformat()})
