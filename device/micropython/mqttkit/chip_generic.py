# A board without Wi-Fi (RP2040, STM32, SAMD …) running mqttkit.link.Host: what differs from the ESP
# chips (installed only on such a host, docs/device.md "Boards without Wi-Fi"). MicroPython docs:
# machine.WDT takes a timeout on these ports.
import machine


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


# No OTA through the serial link: a single firmware, nothing to stage.
def firmware_partitions():
    return {'count': 1, 'running': 'factory'}


def firmware_running():
    return 'factory'


def firmware_sink():
    raise OSError('no firmware updates over the serial link')


def firmware_keep():
    return 'single partition: nothing to keep'
