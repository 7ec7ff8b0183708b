# ESP8266: what differs from the ESP32 (installed only on an ESP8266, see ports.json).
import machine


def watchdog(_timeout_ms):
    # MicroPython docs, machine.WDT: "On the esp8266 a timeout cannot be specified, it is determined by
    # the underlying system" (WDT(timeout=x) raises ValueError unless x is the default). watchdog_ms
    # only turns it on here, and bounds the library's blocking steps (device.py).
    return machine.WDT()


# A single firmware partition: no A/B updates, files only (docs/ota.md 5.3).
def firmware_partitions():
    return {'count': 1, 'running': 'factory'}


def firmware_running():
    return 'factory'


def firmware_sink():
    raise OSError('this board has a single firmware partition: no OTA firmware updates')


def firmware_keep():
    return 'single partition: nothing to keep'
