# The OTA receiver (docs/ota.md): pull transfers triggered on <id>/OTA, staged under temporary names and
# made live only by `commit`; file hashes; firmware to the spare partition with keepversion/rollback.
import json

from . import files, port

try:
    import hashlib
except ImportError:
    import uhashlib as hashlib
try:
    import binascii
except ImportError:
    import ubinascii as binascii
try:
    import socket
except ImportError:
    import usocket as socket
try:
    import errno
except ImportError:
    import uerrno as errno

CHUNK = 512  # bytes of a transfer held in memory at once, in one buffer allocated per transfer
STEP_S = 1  # a blocking socket read waits at most this long, so the watchdog is fed and the link kept
PART = '.part'  # being received
STAGED = '.new'  # received and verified, waiting for commit
OLD = '.old'  # the live file during a commit, until the commit is complete
FIRMWARE = '$firmware'
# Files that are the device's own state, not its code: never reported or replaced by a sync.
PRIVATE = ('mqtt_password', 'last_exception.txt', 'last_reboot.txt', 'device_id', 'boot.json', 'firmware_a.bin', 'firmware_b.bin')


def parse_trigger(text):
    # [O-1] [O-2] host|port|filename|hash[|reboot]  (hash may be sha256:<hex>). Returns reboot as
    # None for seed 002's 4-field form (put the file in place and reboot), else True/False (stage; with
    # True, commit every staged file and reboot).
    parts = text.strip().split('|')
    if len(parts) not in (4, 5):
        raise ValueError('expected host|port|filename|hash[|reboot], got %d fields' % len(parts))
    host, port_text, filename, digest = parts[:4]
    reboot = parts[4] == '1' if len(parts) == 5 else None
    algorithm = 'sha1'
    if digest.startswith('sha256:'):
        algorithm, digest = 'sha256', digest[7:]
    if not filename or filename.startswith('/') or '..' in filename.split('/'):
        raise ValueError('unsafe file name %r' % filename)
    return host, int(port_text), filename, algorithm, digest.lower(), reboot


def hex_digest(h):
    return binascii.hexlify(h.digest()).decode()


def file_hash(name, algorithm='sha1'):
    h = getattr(hashlib, algorithm)()
    with open(files.path(name), 'rb') as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return hex_digest(h)


def _listing(directory=''):
    # Relative paths of every regular file under the root (os.ilistdir exists on both interpreters' ports).
    import os
    names = []
    base = files.path(directory) if directory else (files.ROOT or '/')
    for entry in os.listdir(base) if hasattr(os, 'listdir') else [e[0] for e in os.ilistdir(base)]:
        relative = directory + '/' + entry if directory else entry
        mode = os.stat(files.path(relative))[0]
        if mode & 0x4000:
            if entry not in ('__pycache__',):
                names.extend(_listing(relative))
        else:
            names.append(relative)
    return names


def hashes():
    out = {}
    for name in _listing():
        if name in PRIVATE or name.endswith(PART) or name.endswith(STAGED) or name.endswith(OLD) or name.endswith('.tmp') or name.endswith('.bak'):
            continue
        out[name] = file_hash(name)
    return out


def _ensure_directory(name):
    import os
    parts = name.split('/')[:-1]
    built = ''
    for part in parts:
        built = built + '/' + part if built else part
        try:
            os.mkdir(files.path(built))
        except OSError:
            pass


class FileSink:
    # Receives into <name>.part; finish() makes it <name>.new (staged for commit).
    def __init__(self, name):
        self.name = name
        _ensure_directory(name)
        self.f = open(files.path(name + PART), 'wb')

    def write(self, chunk):
        self.f.write(chunk)

    def finish(self):
        import os
        self.f.close()
        files.remove_file(self.name + STAGED)
        os.rename(files.path(self.name + PART), files.path(self.name + STAGED))

    def abort(self):
        try:
            self.f.close()
        except OSError:
            pass
        files.remove_file(self.name + PART)


def _timed_out(e):
    # A socket timeout: MicroPython raises OSError(ETIMEDOUT), CPython socket.timeout ('timed out').
    return bool(e.args) and e.args[0] in (errno.ETIMEDOUT, 'timed out')


def receive(host, port_number, filename, algorithm, expected, tick=None, timeout=20):
    # Streams the file while hashing, through one CHUNK-byte buffer read with readinto (no allocation
    # per chunk). A file is staged (<name>.new) only when the hash matches; firmware goes to the next
    # partition, which boots only if the hash matched. tick() runs after every chunk and every STEP_S
    # of waiting (the device feeds its watchdog and keeps its MQTT link); the transfer fails after
    # `timeout` seconds without data. Returns (ok, hash, error, sink). Nothing live is touched here.
    h = getattr(hashlib, algorithm)()
    size = 0
    sink = None
    sock = socket.socket()
    try:
        sink = port.firmware_sink() if filename == FIRMWARE else FileSink(filename)
        sock.settimeout(STEP_S)
        if tick:
            tick()
        sock.connect(socket.getaddrinfo(host, port_number, 0, socket.SOCK_STREAM)[0][-1])
        # A board's socket reads into a buffer with readinto(); CPython's (the PC stand-in) with recv_into().
        readinto = getattr(sock, 'readinto', None) or getattr(sock, 'recv_into')
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        idle = 0
        while True:
            if tick:
                tick()
            try:
                n = readinto(buffer)
            except OSError as e:
                if not _timed_out(e):
                    raise
                idle += STEP_S
                if idle >= timeout:
                    raise OSError('no data for %d s' % timeout)
                continue
            if not n:
                break
            idle = 0
            h.update(view[:n])
            sink.write(view[:n])
            size += n
    except Exception as e:
        if sink is not None:
            sink.abort()
        return False, None, 'transfer failed after %d bytes: %r' % (size, e), sink
    finally:
        sock.close()
    actual = hex_digest(h)
    if actual != expected:
        sink.abort()
        return False, actual, 'hash mismatch: expected %s, got %s (%d bytes)' % (expected, actual, size), sink
    sink.finish()
    return True, actual, None, sink


def staged():
    return [name[:-len(STAGED)] for name in _listing() if name.endswith(STAGED)]


def commit(names=None):
    # [O-5] All or nothing: move live files aside, put every staged file (or those named) in place; on
    # any failure put the old files back and keep the staged ones for another try.
    import os
    names = staged() if names is None else names
    moved = []
    placed = []
    try:
        for name in names:
            try:
                os.rename(files.path(name), files.path(name + OLD))
                moved.append(name)
            except OSError:
                pass  # a new file: nothing live to move aside
        for name in names:
            os.rename(files.path(name + STAGED), files.path(name))
            placed.append(name)
    except OSError as e:
        for name in placed:
            os.rename(files.path(name), files.path(name + STAGED))
        for name in moved:
            os.rename(files.path(name + OLD), files.path(name))
        return {'committed': [], 'error': 'commit failed, old files kept: %r' % e}
    for name in moved:
        files.remove_file(name + OLD)
    return {'committed': names}


class Receiver:
    # Wires the OTA commands and the <id>/OTA trigger into a Device.
    def __init__(self, device):
        self.device = device
        commands = device.commands
        commands['open'] = self.open
        commands['commit'] = lambda d, a: commit()
        commands['reboot'] = self.reboot
        commands['hashes'] = lambda d, a: hashes()
        commands['keepversion'] = lambda d, a: port.firmware_keep()
        commands['partitions'] = lambda d, a: port.firmware_partitions()

    def open(self, device, _argument):
        # [O-4] the board's own address, from its network interface (boards' sockets have no getsockname)
        address = port.local_address(device.client.sock if device.client else None)
        device._enqueue('stat/%s/OTA' % device.id, json.dumps({'address': address}), False)
        return 'ota open at %s' % address

    def reboot(self, device, _argument):
        from . import commands
        commands.record_reboot('reboot command')
        device.log('rebooting')
        device._flush_now()
        port.reset()

    def on_trigger(self, text):
        device = self.device
        try:
            host, port_number, filename, algorithm, expected, reboot = parse_trigger(text)
        except ValueError as e:
            device._enqueue('stat/%s/OTA' % device.id, json.dumps({'file': None, 'ok': False, 'hash': None, 'error': str(e)}), False)
            return
        ok, actual, error, sink = receive(host, port_number, filename, algorithm, expected, device._tick)
        report = {'file': filename, 'ok': ok, 'hash': actual, 'error': error}  # [O-3]
        if filename == FIRMWARE and sink is not None:
            report['partition'] = getattr(sink, 'label', None)  # [O-6] the partition written
        if ok and reboot is not False:
            if filename != FIRMWARE:
                # seed 002's 4-field form: this file alone goes live; the 5-field `|1`: every staged file
                result = commit([filename] if reboot is None else None)
                if result.get('error'):
                    report['ok'] = False
                    report['error'] = result['error']
                    ok = False
        device._enqueue('stat/%s/OTA' % device.id, json.dumps(report), False)
        if ok and reboot is not False:
            from . import commands
            commands.record_reboot('update of %s' % filename)
            device._flush_now()
            port.reset()
