# mqttkit.link: a board without Wi-Fi reaching the hub through a bridge on its UART (docs/device.md,
# "Boards without Wi-Fi"; the wire: docs/protocol.md, "Serial link", [L-1]…[L-18]). Host (link_host.py)
# runs on the board without Wi-Fi, Bridge (link_bridge.py) on the ESP8266/ESP32 wired to it: each loads
# only its own side, so a bridge with ~36 KiB of heap never compiles the host's code, and the reverse.


def Host(uart, config=None, status=None, name=None, model=None, manufacturer=None, firmware=None, reset_bridge=None):
    from .link_host import Host
    return Host(uart, config, status, name, model, manufacturer, firmware, reset_bridge)


def Bridge(uart, config=None, status=None, reset_host=None):
    from .link_bridge import Bridge
    return Bridge(uart, config, status, reset_host)
