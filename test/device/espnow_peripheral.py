# An ESP-NOW peripheral of the end-to-end tests: wakes (a process start), pairs if it has a pairing file,
# sends a temperature (argv[1]) and its switch, takes the writes waiting for it, confirms them and
# deep-sleeps (the process ends; the test plays the wake timer). Its switch state lives in a file, as a board's would in RTC memory.
import json
import sys

from mqttkit import files
from mqttkit.espnow import Peripheral


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    node = Peripheral(status=lambda event, detail=None: say(status=event, detail=detail))
    on = (files.read_file('switch') or '0') == '1'

    def switch(value):
        files.write_file('switch', '1' if value else '0')
        say(write='On', value=value)
        return value

    node.on_set('Switch', 'On', switch)
    node.set_meta(name='Soil %s' % node.id)
    node.publish('TemperatureSensor', 'CurrentTemperature', float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
    node.publish('Switch', 'On', on)
    node.sleep(60)  # sends (with $sleep 60), then deep sleep: on a PC the process ends; the test wakes it


main()
