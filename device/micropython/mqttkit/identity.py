# Who this device is: its id (config, a file, or the chip's unique id) and the password it generated on
# first boot and presents ever after (docs/security.md: the first connection registers it).
from . import files, port

ID_FILE = 'device_id'
PASSWORD_FILE = 'mqtt_password'
# Topic roots of the hub (docs/protocol.md [P-2]): the hub refuses these ids, in any case.
RESERVED_IDS = ('homekit', 'cmnd', 'stat', 'tele', 'ota')


def valid_id(text):
    if not 1 <= len(text) <= 64:
        return False
    for ch in text:
        if not (ch.isalpha() or ch.isdigit() or ch in '_-') or ord(ch) > 127:
            return False
    return True


def load_identity(config):
    device_id = config.get('device_id') or (files.read_file(ID_FILE) or '').strip()
    if not device_id:
        device_id = '%s_%s' % (port.platform_name(), port.unique_id()[-8:])
    if not valid_id(device_id):
        raise ValueError('device id %r is invalid: use 1-64 letters, digits, _ or -' % device_id)
    if device_id.lower() in RESERVED_IDS:
        raise ValueError('device id %r is reserved (HomeKit, cmnd, stat, tele, OTA name the hub\'s topics): choose another' % device_id)
    password = (files.read_file(PASSWORD_FILE) or '').strip()
    if not password:
        password = ''.join('%02x' % b for b in port.random_bytes(16))
        files.write_file(PASSWORD_FILE, password)
    return device_id, password
