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

    if '--pace' in sys.argv:
        # plays a board on Wi-Fi for OTA transfers: it reads at about <n> KiB/s (writing flash), through a
        # small TCP window and Wi-Fi's segment size (loopback's 64 KiB segments would let the hub's kernel
        # take a whole file at once), so the hub's progress can be watched as the bytes move. ota.py is
        # loaded on demand: paced as it loads.
        import socket
        import time
        rate = float(sys.argv[sys.argv.index('--pace') + 1]) * 1024
        load = device._load

        class BoardLink:
            def __getattr__(self, name):
                return getattr(socket, name)

            def socket(self, *args):
                s = socket.socket(*args)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # lwIP's window is 5,744 bytes on the ESP8266
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
                return s

        def paced_load(name):
            module = load(name)
            if name == 'ota' and not getattr(module, 'paced', False):
                tick = module._tick
                pause = module.CHUNK / rate

                def paced(d):
                    time.sleep(pause)
                    tick(d)

                module._tick = paced
                module.socket = BoardLink()
                module.paced = True
            return module

        device._load = paced_load

    if '--counter' in sys.argv:
        counter = {'n': 0}

        def tick():
            counter['n'] += 1
            device.publish('TemperatureSensor', 'CurrentTemperature', counter['n'])
            say(published=counter['n'], connected=device.connected)

        device.every(0.2, tick)
    device.run()


run_app(main)
