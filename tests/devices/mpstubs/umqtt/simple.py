# Minimal stand-in: the smoke run never connects (no Wi-Fi).


class MQTTClient:
    def __init__(self, *args, **kw):
        pass
