# SSD1306 for the host runner: each new screen is printed as one text line.
import hostrt


class SSD1306_I2C:
    def __init__(self, width, height, i2c, addr=0x3C):
        self.lines = {}
        self.shown = None

    def fill(self, c):
        self.lines = {}

    def text(self, s, x, y, c=1):
        self.lines[y] = s

    def show(self):
        line = "oled | " + " | ".join(self.lines[y] for y in sorted(self.lines))
        if line != self.shown:
            self.shown = line
            hostrt.say(line)

    def poweroff(self):
        pass

    def contrast(self, c):
        pass
