# The MQTT topic contract (v1) for the devices: the same strings as
# p1common.topics.Topics builds (the PC tests check they agree), built once.


class Topics:
    def __init__(self, prefix, site):
        base = prefix + "/" + site
        self.prefix = prefix
        self.site = site
        self.live = base + "/live"
        self.peak = base + "/peak"
        self.raw = base + "/raw"

    def output_set(self, oid):
        return self.prefix + "/" + self.site + "/output/" + oid + "/set"

    def output_state(self, oid):
        return self.prefix + "/" + self.site + "/output/" + oid + "/state"

    def config_monitor(self, device_id):
        return self.prefix + "/config/" + self.site + "/monitor/" + device_id

    def status(self, client_id):
        return self.prefix + "/status/" + client_id
