# The ESP-NOW gateway of the end-to-end tests: mqttkit.espnow.Gateway on CPython, its radio the PC
# stand-in (device/micropython/pc/espnow.py) on the test's simulated air. Reports as JSON lines.
import json

from mqttkit import run_app
from mqttkit.espnow import Gateway


def say(**event):
    print(json.dumps(event), flush=True)


def main():
    gateway = Gateway(status=lambda event, detail=None: say(status=event, detail=detail))
    say(started=gateway.device.id)
    gateway.run()


run_app(main)
