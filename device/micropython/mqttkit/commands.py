# Observability commands on cmnd/<id>/OTA, answered on stat/<id>/Log (seed 003's command set). The OTA
# receiver registers its transfer commands (open, commit, reboot, ...) into the same dispatcher.
import json
import sys

from . import files, port

EXCEPTION_FILE = 'last_exception.txt'
REBOOT_FILE = 'last_reboot.txt'


def record_exception(e):
    # Keeps the last uncaught exception with its traceback on the filesystem, for msg_exception.
    try:
        import io
        stream = io.StringIO()
        port.print_exception(e, stream)
        files.write_file(EXCEPTION_FILE, stream.getvalue())
    except Exception:
        pass


def record_reboot(reason):
    try:
        files.write_file(REBOOT_FILE, reason)
    except Exception:
        pass


def stats(device, _argument):
    return {
        'uptime_s': device.uptime_s(),
        'reconnects': device.stats['reconnects'],
        'published': device.stats['published'],
        'received': device.stats['received'],
        'dropped': device.stats['dropped'],
        'queued': len(device.queue),
        'mem_free': port.mem_free(),
    }


def msg_reboot(_device, _argument):
    return files.read_file(REBOOT_FILE) or port.reset_cause()


def msg_exception(_device, _argument):
    return files.read_file(EXCEPTION_FILE) or 'no exception recorded'


def msg_rm(_device, _argument):
    files.remove_file(EXCEPTION_FILE)
    files.remove_file(REBOOT_FILE)
    return 'messages removed'


def getversion(device, _argument):
    from .device import VERSION
    return {
        'firmware': port.firmware_version(),
        'app': device.meta.get('firmware'),
        'library': VERSION,
        'platform': port.platform_name(),
        'python': '%s %s' % (sys.implementation.name, '.'.join(str(n) for n in sys.implementation.version[:3])),
        'partition': port.firmware_running(),  # [O-6] the hub confirms a firmware update by partition
        'ota': 2,  # [O-11] speaks the 5-field trigger; without it the hub sends seed 002's 4 fields
    }


def default_commands():
    return {'stats': stats, 'msg_reboot': msg_reboot, 'msg_exception': msg_exception, 'msg_rm': msg_rm, 'getversion': getversion}


def encode(answer):
    return answer if isinstance(answer, str) else json.dumps(answer)
