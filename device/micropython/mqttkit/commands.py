# Commands on cmnd/<id>/OTA, answered on stat/<id>/Log (seed 003's command set). Loaded on demand when a
# command arrives (device.py drops it again when unused); the OTA ones are ota.py's, loaded instead.
import json
import sys

from . import files, port

# board.py (what the board says about itself) is imported where it is asked, so that only those commands load it.
def stats(device, _argument):
    # [O-22] counters since the program started; mem_free in bytes
    from . import board
    return {
        'uptime_s': port.ticks_diff(port.ticks_ms(), device.started) // 1000,
        'reconnects': device.stats['reconnects'],
        'published': device.stats['published'],
        'received': device.stats['received'],
        'dropped': device.stats['dropped'],
        'queued': len(device.queue),
        'mem_free': board.mem_free(),
    }


def msg_reboot(_device, _argument):
    from . import board
    return files.read_file('last_reboot.txt') or board.reset_cause()


def msg_exception(_device, _argument):
    return files.read_file('last_exception.txt') or 'no exception recorded'


def msg_rm(_device, _argument):
    # [O-20] the answer texts are the contract's
    files.remove_file('last_exception.txt')
    files.remove_file('last_reboot.txt')
    return 'messages removed'


def getversion(device, _argument):
    import hashlib
    from . import board
    from .device import VERSION
    return {
        'firmware': board.firmware_version(),
        'app': device.meta.get('firmware'),
        'library': VERSION,
        'platform': board.platform_name(),
        'python': '%s %s' % (sys.implementation.name, '.'.join(str(n) for n in sys.implementation.version[:3])),
        'partition': board.firmware_running(),  # [O-6] the hub confirms a firmware update by partition
        'ota': 2,  # [O-11] speaks the 5-field trigger; without it the hub sends seed 002's 4 fields
        'rid': 1,  # [O-12] echoes request ids: '#<n> <command>' is answered '#<n> <answer>'
        # [O-16] what a trigger's hash may be: sha256 only where the build has it (some ESP8266 builds lack it)
        'hashes': ['sha1', 'sha256'] if hasattr(hashlib, 'sha256') else ['sha1'],
    }


BUILTIN = {'stats': stats, 'msg_reboot': msg_reboot, 'msg_exception': msg_exception, 'msg_rm': msg_rm, 'getversion': getversion}


def split(text):
    # [O-12] '[#<n> ]<name>[ <argument>]' -> ('#<n> ' or '', name, argument): the answer starts with the
    # request id as it came, so the hub knows which command it answers. (ota.py has its own copy.)
    text = text.strip()
    rid = ''
    if text[:1] == '#':
        rid = text.split(' ')[0] + ' '
        text = text[len(rid):].strip()
    name = text.split(' ')[0]
    argument = text[len(name):]
    return rid, name, argument.strip()


def handle(device, text):
    # "[#<n> ]<name> [argument]": the application's commands first, then the built-in ones (device.py
    # sends the OTA commands to ota.py without loading this module).
    rid, name, argument = split(text)
    handler = device.commands.get(name) or BUILTIN.get(name)
    if handler is None:
        from .device import OTA_COMMANDS
        known = sorted(set(list(device.commands) + list(BUILTIN) + OTA_COMMANDS.split()))
        device.log('%sunknown command %s (known: %s)' % (rid, name, ', '.join(known)))
        return
    answer(device, name, handler, argument, rid)


def answer(device, name, run, argument, rid=''):
    # Runs a command and answers it on stat/<id>/Log (after its request id, if it came with one); a
    # failing one is recorded for msg_exception.
    # (ota.py has its own copy: it answers its commands without loading this module.)
    try:
        result = run(device, argument)
    except Exception as e:
        files.record_exception(e)
        result = 'command %s failed: %r (details: msg_exception)' % (name, e)
    if result is not None:
        device.log(rid + (result if isinstance(result, str) else json.dumps(result)))
