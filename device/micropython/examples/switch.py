# A relay that HomeKit can switch. On a board: GPIO 12 drives the relay (a Sonoff Basic), GPIO 0 is the
# button. On CPython the relay is simulated. Copy as main.py; see docs/device.md.
import sys

from mqttkit import Device, run_app
from mqttkit import port

RELAY_PIN = 12
BUTTON_PIN = 0


def main():
    device = Device(name='Relay', model='Sonoff Basic', manufacturer='Itead', firmware='1.0.0')
    state = {'on': False}

    if sys.implementation.name == 'micropython':
        import machine
        relay = machine.Pin(RELAY_PIN, machine.Pin.OUT)
        button = machine.Pin(BUTTON_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    else:
        relay = button = None

    def apply(on):
        state['on'] = bool(on)
        if relay is not None:
            relay.value(1 if on else 0)
        return state['on']

    # A HomeKit write: switch the relay, and confirm what it now is.
    device.on_set('Switch', 'On', apply)

    def poll_button():
        if button is not None and button.value() == 0:
            device.publish('Switch', 'On', apply(not state['on']))

    device.every(0.1, poll_button)
    device.publish('Switch', 'On', state['on'], retain=True)
    device.run()


run_app(main)
