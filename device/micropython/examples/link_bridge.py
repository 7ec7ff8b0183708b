# The bridge for a host without Wi-Fi (docs/device.md, "Boards without Wi-Fi"): an ESP8266 (or ESP32)
# whose UART is wired to the host. config.json on the bridge: wifi_ssid, wifi_password, broker, port
# (no device id, no password: those stay on the host). On an ESP8266, UART 0 is also the REPL: this
# program detaches it (os.dupterm), so the bridge talks only the link's frames on GPIO1/GPIO3.
import os

from machine import UART, Pin
from mqttkit.link import Bridge

if hasattr(os, 'dupterm'):
    os.dupterm(None, 1)  # ESP8266: UART 0 carries the link, not the REPL
uart = UART(0, 115200, rxbuf=2048)
Bridge(uart, reset_host=Pin(5, Pin.OPEN_DRAIN, value=1)).run()
