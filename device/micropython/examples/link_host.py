# A host without Wi-Fi (e.g. a Raspberry Pi Pico) reaching the hub through a bridge on its UART
# (docs/device.md, "Boards without Wi-Fi"). Wiring: host TX -> bridge RX, host RX <- bridge TX, GND;
# optionally a host GPIO (open drain) to the bridge's RST, and a bridge GPIO to the host's RUN/RESET.
# config.json on the host holds the device's own settings (device_id, keepalive, …): never Wi-Fi.
from machine import UART, Pin
from mqttkit import run_app
from mqttkit.link import Host


def main():
    uart = UART(0, 115200, tx=Pin(0), rx=Pin(1), rxbuf=2048)
    host = Host(uart, name='Greenhouse', model='Pico + ESP8266', firmware='1.0.0',
                reset_bridge=Pin(2, Pin.OPEN_DRAIN, value=1),
                status=lambda event, detail=None: print(event, detail))
    fan = Pin(15, Pin.OUT)

    def switch(on):
        fan.value(on)
        return on

    host.on_set('Fan', 'On', switch)
    host.publish('Fan', 'On', False, retain=True)
    host.every(60, lambda: host.publish('TemperatureSensor', 'CurrentTemperature', 21.5))
    host.run()


run_app(main)
