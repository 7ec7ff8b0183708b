# A host program for the serial-link tests: mqttkit.link.Host on a pseudo-terminal (config "uart"),
# reporting what it does as JSON lines on stdout. --counter publishes 1, 2, 3, … every 0.2 s.
import json
import sys

from link_uart import PtyUART, ResetLine
from mqttkit import files, run_app
from mqttkit.link import Host


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    uart = PtyUART(json.loads(files.read_file('config.json') or '{}')['uart'])
    host = Host(uart, name='Serial probe', model='Pico', firmware='1.0.0', reset_bridge=ResetLine('bridge'),
                status=lambda event, detail=None: say(status=event, detail=detail))
    say(started=host.id)

    def switch(value):
        say(set='On', value=value)
        return value

    host.on_set('Switch', 'On', switch)
    host.publish('Switch', 'On', False)

    if '--counter' in sys.argv:
        counter = {'n': 0}

        def tick():
            counter['n'] += 1
            host.publish('LightSensor', 'CurrentAmbientLightLevel', counter['n'])  # up to 100000 lux: the counter never leaves the range
            say(published=counter['n'], connected=host.connected)

        host.every(0.2, tick)
    host.run()


run_app(main)
