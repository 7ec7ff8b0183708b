# A switch for the Home app, with the mqttkit device library (device/micropython/): the file
# `mqttkit ota push <device> examples/main.py` sends. Its relay logic lives in lib/relay.py, which
# `mqttkit ota sync` sends with it (examples/manifest.txt).
from mqttkit import Device, run_app

from relay import Relay  # lib/relay.py: /lib is on a MicroPython board's import path


def main():
    device = Device(name='Example switch', firmware='1.1.0')
    relay = Relay(pin=None)  # None: no wiring, the state lives in RAM

    def switch(on):
        relay.set(on)
        return relay.on

    device.on_set('Switch', 'On', switch)
    device.publish('Switch', 'On', relay.on, retain=True)
    device.run()


run_app(main)
