# A device program for the end-to-end tests: the real library on CPython, reporting what it does as
# JSON lines on stdout so the test can follow it.
import json
import sys

from mqttkit import Device, run_app


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    device = Device(name='Probe', model='Test probe', firmware='2.3.4',
                    status=lambda event, detail=None: say(status=event, detail=detail))
    say(started=device.id)

    def switch(value):
        say(set='On', value=value)
        return value

    device.on_set('Switch', 'On', switch)
    device.publish('Switch', 'On', False)

    @device.command('crash')
    def crash(_device, _argument):
        return 1 // 0

    if '--no-discard' in sys.argv:
        # plays a device library from before `discard` [O-13]: staged files of earlier jobs stay
        @device.command('discard')
        def no_discard(_device, _argument):
            return 'unknown command discard'

    if '--counter' in sys.argv:
        counter = {'n': 0}

        def tick():
            counter['n'] += 1
            device.publish('TemperatureSensor', 'CurrentTemperature', counter['n'])
            say(published=counter['n'], connected=device.connected)

        device.every(0.2, tick)
    device.run()


run_app(main)
