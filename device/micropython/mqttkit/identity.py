# Who this device is: its id (config, a file, or the chip's unique id) and the password it generated on
# first boot and presents ever after (docs/security.md: the first connection registers it). Loaded only
# while Device() sets itself up (device.py drops it again).
from . import files, port


def load_identity(config):
    device_id = config.get('device_id') or (files.read_file('device_id') or '').strip()
    if not device_id:
        device_id = port.platform_name() + '_' + port.unique_id()[-8:]
    if not 1 <= len(device_id) <= 64 or [c for c in device_id if not (c.isalpha() or c.isdigit() or c in '_-') or ord(c) > 127]:
        raise ValueError('device id %r is invalid: use 1-64 letters, digits, _ or -' % device_id)
    # Topic roots of the hub (docs/protocol.md [P-2]): the hub refuses these ids, in any case.
    if device_id.lower() in ('homekit', 'cmnd', 'stat', 'tele', 'ota'):
        raise ValueError('device id %r is reserved (HomeKit, cmnd, stat, tele, OTA name the hub\'s topics): choose another' % device_id)
    password = (files.read_file('mqtt_password') or '').strip()
    if not password:
        password = ''.join('%02x' % b for b in port.random_bytes(16))
        files.write_file('mqtt_password', password)
    return device_id, password
