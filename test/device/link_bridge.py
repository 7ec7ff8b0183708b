# A bridge program for the serial-link tests: mqttkit.link.Bridge on a pseudo-terminal (config "uart"),
# reporting what it does as JSON lines on stdout; its reset line to the host is a ResetLine event.
import json

from link_uart import PtyUART, ResetLine
from mqttkit import files
from mqttkit.link import Bridge


def main():
    uart = PtyUART(json.loads(files.read_file('config.json') or '{}')['uart'])
    bridge = Bridge(uart, status=lambda event, detail=None: print(json.dumps({'status': event, 'detail': detail}), flush=True),
                    reset_host=ResetLine('host'))
    # The PC has no radio to lose: a file `wifi_off` in the bridge's root plays Wi-Fi going down.
    wifi = bridge.wifi_up
    bridge.wifi_up = lambda: wifi() and files.read_file('wifi_off') is None
    print(json.dumps({'bridge': True}), flush=True)
    bridge.run()


main()
