# A device program for the regression test of Device._flush (a QoS 1 message must stay queued until the
# client has handed it over): its socket breaks while one marked value is being published, as a lost
# Wi-Fi link breaks a board's send. The value must still reach the hub after the reconnect.
import json

from mqttkit import Device, mqtt, run_app

MARK = b'HomeKit/%s/TemperatureSensor/CurrentTemperature'


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    device = Device(status=lambda event, detail=None: say(status=event, detail=detail))
    topic = MARK % device.id.encode()
    write = mqtt.MQTTClient.write
    broken = {'done': False}

    def breaking(sock, data):
        # The first PUBLISH of the marked value: the link dies under it (the socket is gone, the write fails).
        if not broken['done'] and data[:1] in (b'\x30', b'\x32', b'\x33', b'\x31') and topic in bytes(data) and bytes(data).endswith(b'42.5'):
            broken['done'] = True
            sock.close()
            say(broke=True)
            raise OSError(104, 'ECONNRESET (injected)')
        write(sock, data)

    mqtt.MQTTClient.write = staticmethod(breaking)
    sent = {'done': False}

    def once():
        if device.connected and not sent['done']:
            sent['done'] = True
            device.publish('TemperatureSensor', 'CurrentTemperature', 42.5)
            say(published=42.5)

    device.every(0.1, once)
    device.run()


run_app(main)
