# The device's own files (password, id, records) on its filesystem; the same on a board and on a PC.
import os

ROOT = ''  # the filesystem root: '' on a board; the PC harness points it at MQTTKIT_ROOT


def path(name):
    return ROOT + '/' + name if ROOT else name


def _exists(name):
    try:
        os.stat(path(name))
        return True
    except OSError:
        return False


def read_file(name):
    # A power cut during write_file leaves <name>.bak (the old content) where <name> should be: put it back.
    if not _exists(name) and _exists(name + '.bak'):
        os.rename(path(name + '.bak'), path(name))
    try:
        with open(path(name)) as f:
            return f.read()
    except OSError:
        return None


def write_file(name, text):
    # Power-cut safe: at every moment either <name> or <name>.bak holds a complete old or new content.
    # 1. the new content goes to <name>.tmp (a cut here leaves <name> untouched);
    # 2. <name> moves aside to <name>.bak; 3. <name>.tmp becomes <name>; 4. <name>.bak goes.
    # Nothing is renamed onto an existing file: LittleFS would replace it, but FAT refuses.
    remove_file(name + '.tmp')
    with open(path(name + '.tmp'), 'w') as f:
        f.write(text)
    if _exists(name):
        remove_file(name + '.bak')  # a leftover from a cut after step 3: <name> is complete
        os.rename(path(name), path(name + '.bak'))
    os.rename(path(name + '.tmp'), path(name))
    remove_file(name + '.bak')


def remove_file(name):
    try:
        os.remove(path(name))
        return True
    except OSError:
        return False


# The crash path (run_app, a failing callback): small and always loaded, so recording a crash never
# has to compile a module at a bad moment. msg_reboot and msg_exception (commands.py) read these back.
def record_reboot(reason):
    try:
        write_file('last_reboot.txt', reason)
    except Exception:
        pass


def record_exception(e):
    try:
        import io
        from . import port
        stream = io.StringIO()
        port.print_exception(e, stream)
        write_file('last_exception.txt', stream.getvalue())
    except Exception:
        pass
