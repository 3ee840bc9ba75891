# Board profiles: which GPIO does what. NodeMCU / D1 mini silk-screen labels:
# D0=16 D1=5 D2=4 D3=0 D4=2 D5=14 D6=12 D7=13 D8=15, TX=1 RX=3.
D0, D1, D2, D3, D4, D5, D6, D7, D8, TX, RX = 16, 5, 4, 0, 2, 14, 12, 13, 15, 1, 3

# "inv": outputs active low; "btn": button pin (pressed = low, pull-up)
BOARDS = {
    # monitor: injection LEDs level 1..5 = D4 D3 D2 D1 D0, import 1..4 = D5..D8
    "nodemcu": {"exp": (D4, D3, D2, D1, D0), "imp": (D5, D6, D7, D8),
                "red": TX, "blue": RX, "uart": True},
    "d1mini": {"exp": (D4, D3, D2, D1, D0), "imp": (D5, D6, D7, D8),
               "red": TX, "blue": RX, "uart": True},
    # mini-switch: ESP-01/01S relay board (relay on GPIO0, active low on the
    # common v1.0 board), blue LED GPIO2 active low on the ESP-01S, no button
    "esp01": {"relay": 0, "relay_inv": True, "led": 2, "led_inv": True, "btn": None},
    # Sonoff Basic (ESP8266/ESP8285): relay GPIO12, LED GPIO13 (active low),
    # button GPIO0
    "sonoff": {"relay": 12, "relay_inv": False, "led": 13, "led_inv": True, "btn": 0},
    # switcher: D1 mini on the dimmer board: zero-cross D1, triac gate D2
    # (older boards: D0), OLED SSD1306 on I2C SDA=D4 SCL=D5
    "dimmer": {"zc": D1, "gate": D2, "sda": D4, "scl": D5, "btn": None, "led": None},
    # p1-dongle: D1 mini (ESP-12) on the meter's P1 port: data in on RX (UART0,
    # through the inverting transistor), Data Request driven by D1 through a
    # transistor to 5 V, built-in LED on D4 (active low) flashes per telegram
    "p1dongle": {"req": D1, "led": D4, "led_inv": True, "uart": True},
}

DEFAULT = {"monitor": "nodemcu", "mini-switch": "sonoff", "switcher": "dimmer",
           "p1-dongle": "p1dongle"}


def profile(name, device):
    return BOARDS.get(name) or BOARDS[DEFAULT[device]]
