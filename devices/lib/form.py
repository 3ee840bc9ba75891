# Set-up portal form handling, pure: URL-encoded body -> settings update.

FIELDS = ("ssid", "password", "mqtt_host", "mqtt_port", "mqtt_user",
          "mqtt_password", "site", "device_id")
MAX_BODY = 1024


def unquote(s):
    # application/x-www-form-urlencoded value -> str ('+' is a space, %XX bytes)
    b = s.replace("+", " ").encode()
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 37 and i + 2 < n:
            try:
                out.append(int(bytes(b[i + 1:i + 3]).decode(), 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        return ""


def parse(body):
    # b"ssid=My+Net&password=..." -> {"ssid": "My Net", ...} (known fields only)
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode()
    d = {}
    for part in body.split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            k = unquote(k)
            if k in FIELDS:
                d[k] = unquote(v)
    return d


def _slug(s):
    if not 1 <= len(s) <= 64:
        return False
    for c in s:
        if not (c.isalpha() or c.isdigit() or c in "._-"):
            return False
    return True


def validate(d):
    # -> (update dict, list of error strings naming the field)
    errors = []
    up = {}
    ssid = d.get("ssid", "").strip()
    if not 1 <= len(ssid) <= 32:
        errors.append("ssid: 1-32 characters")
    up["ssid"] = ssid
    pw = d.get("password", "")
    if pw and not 8 <= len(pw) <= 63:
        errors.append("password: empty or 8-63 characters")
    up["password"] = pw
    host = d.get("mqtt_host", "").strip()
    if not host or " " in host or len(host) > 64:
        errors.append("mqtt_host: a host name or address")
    up["mqtt_host"] = host
    port = d.get("mqtt_port", "1883").strip() or "1883"
    try:
        p = int(port)
        if not 0 < p < 65536:
            raise ValueError
        up["mqtt_port"] = p
    except ValueError:
        errors.append("mqtt_port: 1-65535")
    up["mqtt_user"] = d.get("mqtt_user", "").strip()
    up["mqtt_password"] = d.get("mqtt_password", "")
    for k in ("site", "device_id"):
        v = d.get(k, "").strip()
        if not _slug(v):
            errors.append(k + ": 1-64 letters, digits, '.', '-' or '_'")
        up[k] = v
    return up, errors


def escape(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;")
