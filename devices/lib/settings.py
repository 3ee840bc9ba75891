# Settings in flash: one JSON file, written atomically (temp file + rename), so a
# power cut never leaves half a file. The file system is not touched by flashing
# a new firmware (only `esptool erase_flash` wipes it), so settings survive updates.
import json
import os

PATH = "settings.json"

DEFAULTS = {
    "ssid": "", "password": "",
    "mqtt_host": "", "mqtt_port": 1883, "mqtt_user": "", "mqtt_password": "",
    "prefix": "p1", "site": "home", "device_id": "",
    "board": "", "output_id": "",
    "keepalive_s": 30, "watchdog_s": 10,
    "max_import_w": 5000, "max_export_w": 5000,
    "firing": "burst", "mains_hz": 50,
    "relay_inverted": None,
}


def _read(path):
    with open(path) as f:
        d = json.load(f)
    return d if isinstance(d, dict) else None


def load(path=PATH, defaults=DEFAULTS):
    # defaults, overlaid with the file (or its temp copy left by a cut rename)
    d = dict(defaults)
    for p in (path, path + ".tmp"):
        try:
            got = _read(p)
        except (OSError, ValueError):
            continue
        if got is not None:
            d.update(got)
            break
    return d


def save(data, path=PATH):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT (the ESP8266 default) refuses to rename over an existing file;
        # load() reads the .tmp copy if power fails between these two steps
        os.remove(path)
        os.rename(tmp, path)
