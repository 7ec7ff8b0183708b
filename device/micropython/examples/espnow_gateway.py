# An ESP-NOW gateway (ESP32, mains powered): relays its paired peripherals to the hub (docs/device.md,
# "ESP-NOW peripherals"). config.json as for any device (Wi-Fi, broker); pair peripherals with
# `mqttkit espnow pair <this device id> <peripheral-id>`.
from mqttkit import run_app
from mqttkit.espnow import Gateway


def main():
    Gateway(name='Garden gateway').run()


run_app(main)
