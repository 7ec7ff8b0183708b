# The OTA receiver (docs/ota.md): pull transfers triggered on <id>/OTA, staged under temporary names and
# made live only by `commit`; file hashes; firmware to the spare partition with keepversion/rollback.
# Loaded on demand by a trigger or an OTA command (device.py drops it again when unused). The bytes come
# from the hub's TCP server, or for a board without Wi-Fi from a source that reads them through its
# serial bridge (link_host.LinkSource, docs/protocol.md [L-13]).
import binascii
import errno
import hashlib
import json
import os

try:
    import socket  # pyright: ignore[reportMissingImports] (absent on a serial-link host: see below)
except ImportError:  # a board without Wi-Fi: its bytes come through its serial bridge [L-13]
    socket = None

from . import files, port
from .mqtt import MQTTError

CHUNK = 512  # bytes of a transfer held in memory at once, in one buffer allocated per transfer
STEP_S = 1  # a blocking socket read waits at most this long, so the watchdog is fed and the link kept
FIRMWARE = '$firmware'
# Files that are the device's own state, not its code: never reported or replaced by a sync.
PRIVATE = ('mqtt_password', 'last_exception.txt', 'last_reboot.txt', 'device_id', 'boot.json', 'firmware_a.bin', 'firmware_b.bin')
# '.part' being received, '.new' received and verified (staged for commit), '.old' the live file during
# a commit; '.tmp' and '.bak' are files.write_file's.
TEMPORARY = ('.part', '.new', '.old', '.tmp', '.bak')


def parse_trigger(text):
    # [O-1] [O-2] host|port|filename|hash[|reboot]  (hash may be sha256:<hex>). Returns reboot as
    # None for seed 002's 4-field form (put the file in place and reboot), else True/False (stage; with
    # True, commit every staged file and reboot).
    parts = text.strip().split('|')
    if len(parts) not in (4, 5):
        raise ValueError('expected host|port|filename|hash[|reboot], got %d fields' % len(parts))
    host, port_text, filename, digest = parts[:4]
    algorithm = 'sha1'
    if digest.startswith('sha256:'):
        algorithm, digest = 'sha256', digest[7:]
    steps = filename.split('/')
    if '' in steps or '.' in steps or '..' in steps:
        raise ValueError('unsafe file name %r' % filename)  # [O-2] relative, no empty, '.' or '..' part
    return host, int(port_text), filename, algorithm, digest.lower(), parts[4] == '1' if len(parts) == 5 else None


def file_hash(name, algorithm='sha1'):
    h = getattr(hashlib, algorithm)()
    buffer = bytearray(CHUNK)
    with open(files.path(name), 'rb') as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                return binascii.hexlify(h.digest()).decode()
            h.update(memoryview(buffer)[:n])


def _listing(directory=''):
    # Relative paths of every regular file under the root.
    names = []
    for entry in os.listdir(files.path(directory) if directory else (files.ROOT or '/')):
        relative = directory + '/' + entry if directory else entry
        if os.stat(files.path(relative))[0] & 0x4000:
            if entry != '__pycache__':
                names.extend(_listing(relative))
        else:
            names.append(relative)
    return names


def hashes():
    # [O-23] every file but the device's own state and temporary names
    out = {}
    for name in _listing():
        if name not in PRIVATE and name[name.rfind('.'):] not in TEMPORARY:
            out[name] = file_hash(name)
    return out


class FileSink:
    # Receives into <name>.part; finish() makes it <name>.new (staged for commit). [O-24] creates the folders.
    def __init__(self, name):
        self.name = name
        built = ''
        for part in name.split('/')[:-1]:
            built = built + '/' + part if built else part
            try:
                os.mkdir(files.path(built))
            except OSError:
                pass
        self.f = open(files.path(name + '.part'), 'wb')

    def write(self, chunk):
        self.f.write(chunk)

    def finish(self):
        self.f.close()
        files.remove_file(self.name + '.new')
        os.rename(files.path(self.name + '.part'), files.path(self.name + '.new'))

    def abort(self):
        try:
            self.f.close()
        except OSError:
            pass
        files.remove_file(self.name + '.part')


def receive(host, port_number, filename, algorithm, expected, tick=None, timeout=20, source=None):
    # Streams the file while hashing, through one CHUNK-byte buffer read with readinto (no allocation
    # per chunk). A file is staged (<name>.new) only when the hash matches; firmware goes to the next
    # partition, which boots only if the hash matched. tick() runs after every chunk and every STEP_S
    # of waiting (the device feeds its watchdog and keeps its MQTT link); the transfer fails after
    # `timeout` seconds without data. Returns (ok, hash, error, sink). Nothing live is touched here.
    # The bytes come from the hub's TCP server at host:port_number [O-1], or from `source` when a device
    # has no network of its own (a serial-link host, [L-13]): open() -> a readinto(buffer) that returns
    # the bytes read, 0 at the end, or raises OSError(ETIMEDOUT) after STEP_S without any; close();
    # `limit`: the largest file it has room for (the transfer fails before a byte past it is written).
    h = getattr(hashlib, algorithm)()
    size = 0
    sink = None
    sock = None
    limit = 0
    if source is None:
        sock = socket.socket()  # pyright: ignore[reportOptionalMemberAccess] (None only on a host, which passes a source)
    else:
        limit = source.limit
    try:
        if filename == FIRMWARE:
            from . import board  # the chip's partitions (board.py loads only for firmware)
            sink = board.firmware_sink()
        else:
            sink = FileSink(filename)
        if sock:
            sock.settimeout(STEP_S)
        if tick:
            tick()
        if sock:
            sock.connect(socket.getaddrinfo(host, port_number, 0, socket.SOCK_STREAM)[0][-1])  # pyright: ignore[reportOptionalMemberAccess]
            # A board's socket reads into a buffer with readinto(); CPython's (the PC stand-in) with recv_into().
            readinto = getattr(sock, 'readinto', None) or getattr(sock, 'recv_into')
        else:
            readinto = source.open()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        idle = 0
        while True:
            if tick:
                tick()
            try:
                n = readinto(buffer)
            except OSError as e:
                # A socket timeout: MicroPython raises OSError(ETIMEDOUT), CPython socket.timeout ('timed out').
                if not e.args or e.args[0] not in (errno.ETIMEDOUT, 'timed out'):
                    raise
                idle += STEP_S
                if idle >= timeout:
                    raise OSError('no data for %d s' % timeout)
                continue
            if not n:
                break
            idle = 0
            if limit and size + n > limit:
                # [L-14] checked before the write: a file that does not fit never fills the filesystem
                raise OSError('the file is larger than the %d bytes this device has room for' % limit)
            chunk = buffer if n == CHUNK else view[:n]  # a full buffer as it is: no slice object per read
            h.update(chunk)
            sink.write(chunk)
            size += n
    except Exception as e:
        if sink is not None:
            sink.abort()
        return False, None, 'transfer failed after %d bytes: %r' % (size, e), sink
    finally:
        (sock or source).close()
    actual = binascii.hexlify(h.digest()).decode()
    if actual != expected:
        sink.abort()
        return False, actual, 'hash mismatch: expected %s, got %s (%d bytes)' % (expected, actual, size), sink
    sink.finish()
    return True, actual, None, sink


def discard():
    # [O-13] Deletes what earlier jobs staged (<name>.new) or left half-received (<name>.part), so a job
    # commits only what it sent itself. Answers the files deleted, as they were named on disk.
    gone = []
    for name in _listing():
        if name.endswith('.new') or name.endswith('.part'):
            files.remove_file(name)
            gone.append(name)
    return {'discarded': gone}


def commit(names=None):
    # [O-5] All or nothing: move live files aside, put every staged file (or those named) in place; on
    # any failure put the old files back and keep the staged ones for another try.
    names = [name[:-4] for name in _listing() if name.endswith('.new')] if names is None else names
    moved = []
    placed = []
    try:
        for name in names:
            try:
                os.rename(files.path(name), files.path(name + '.old'))
                moved.append(name)
            except OSError:
                pass  # a new file: nothing live to move aside
        for name in names:
            os.rename(files.path(name + '.new'), files.path(name))
            placed.append(name)
    except OSError as e:
        for name in placed:
            os.rename(files.path(name), files.path(name + '.new'))
        for name in moved:
            os.rename(files.path(name + '.old'), files.path(name))
        return {'committed': [], 'error': 'commit failed, old files kept: %r' % e}
    for name in moved:
        files.remove_file(name + '.old')
    return {'committed': names}


def _reboot(device, reason):
    # Gets the queue out and acknowledged, briefly (2 s), and resets.
    files.record_reboot(reason)
    until = port.ticks_ms() + 2000
    while device.connected and (device.queue or device.inflight) and port.ticks_diff(until, port.ticks_ms()) > 0:
        try:
            device._flush()
            device.client.check_msg(20)
        except MQTTError:
            break
    port.reset()


def run_command(device, text):
    # An OTA command on cmnd/<id>/OTA: device.py loads this module for it, and not commands.py.
    # (commands.answer's twin: loading commands.py beside this module would double the peak.)
    # [O-12] '[#<n> ]<name>[ <argument>]': the answer starts with the request id as it came.
    text = text.strip()
    rid = ''
    if text[:1] == '#':
        rid = text.split(' ')[0] + ' '
        text = text[len(rid):].strip()
    name = text.split(' ')[0]
    argument = text[len(name):]
    try:
        # `reboot` answers first, then resets (below)
        result = 'rebooting' if name == 'reboot' else command(device, name, argument.strip())
    except Exception as e:
        files.record_exception(e)
        result = 'command %s failed: %r (details: msg_exception)' % (name, e)
    if result is not None:
        device.log(rid + (result if isinstance(result, str) else json.dumps(result)))
    if name == 'reboot':
        _reboot(device, 'reboot command')


def command(device, name, _argument):
    # The OTA commands on cmnd/<id>/OTA.
    from . import board
    if name == 'open':
        # [O-4] the board's own address, from its network interface (boards' sockets have no getsockname);
        # a serial-link host's is its bridge's, which fetches the files for it [L-13]
        local = getattr(device, 'local_address', None)
        address = local() if local else board.local_address(device.client.sock if device.client else None)
        device._enqueue('stat/%s/OTA' % device.id, json.dumps({'address': address}), False)
        return 'ota open at %s' % address
    if name == 'commit':
        return commit()
    if name == 'discard':
        return discard()
    if name == 'hashes':
        return hashes()
    return board.firmware_keep() if name == 'keepversion' else board.firmware_partitions()


def _tick(device):
    # Runs during a transfer (inside the MQTT callback): feeds the watchdog and keeps the MQTT link
    # (ping, [P-20] heartbeat), as the loop would.
    device._feed()
    if device.connected:
        try:
            device._keepalive()
        except MQTTError as e:
            device._lost(str(e))


def handle(device, text):
    # A trigger on <id>/OTA: pull, verify, stage; then (seed 002's 4 fields, or |1) commit and reboot.
    topic = 'stat/%s/OTA' % device.id
    try:
        host, port_number, filename, algorithm, expected, reboot = parse_trigger(text)
    except ValueError as e:
        device._enqueue(topic, json.dumps({'file': None, 'ok': False, 'hash': None, 'error': str(e)}), False)
        return
    if not hasattr(hashlib, algorithm):
        # [O-16] a board without it says so in getversion's "hashes"; a hub that sent it anyway gets this
        device._enqueue(topic, json.dumps({'file': filename, 'ok': False, 'hash': None, 'error': '%s is not supported by this board (getversion lists its hashes)' % algorithm}), False)
        return
    # A device without its own network (a serial-link host) names where its bytes come from [L-13]
    make = getattr(device, 'ota_source', None)
    ok, actual, error, sink = receive(host, port_number, filename, algorithm, expected, lambda: _tick(device), source=make(host, port_number) if make else None)
    if actual and algorithm != 'sha1':
        actual = algorithm + ':' + actual  # [O-16] the report's hash in the trigger's form
    report = {'file': filename, 'ok': ok, 'hash': actual, 'error': error}  # [O-3]
    if filename == FIRMWARE and sink is not None:
        report['partition'] = getattr(sink, 'label', None)  # [O-6] the partition written
    if ok and reboot is not False and filename != FIRMWARE:
        # seed 002's 4-field form: this file alone goes live; the 5-field `|1`: every staged file
        result = commit([filename] if reboot is None else None)
        if result.get('error'):
            # [O-15] verified and staged, but not made live: say so, keep the old files, do not reboot
            report['ok'] = ok = False
            report['error'] = result['error']
            report['step'] = 'commit'
        elif reboot:
            report['committed'] = result['committed']  # [O-13] what went live, checked by the hub
    device._enqueue(topic, json.dumps(report), False)
    if ok and reboot is not False:
        _reboot(device, 'update of %s' % filename)
