# Expect: passes on esp32; fails on esp8266 (its WDT takes no timeout).
import machine

machine.WDT(timeout=1000).feed()
