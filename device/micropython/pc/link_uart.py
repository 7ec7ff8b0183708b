# PC stand-ins for the serial link (docs/device.md, "Boards without Wi-Fi"): a UART on a pseudo-terminal
# with machine.UART's stream methods (any, read, write), and a reset line that reports its level as a
# JSON event on stdout (the tests play the wire: they restart the process whose reset line was pulled).
# Never installed on a board.
import fcntl
import json
import os
import select
import struct
import termios
import tty


class PtyUART:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    def any(self):
        return struct.unpack('i', fcntl.ioctl(self.fd, termios.FIONREAD, b'\0\0\0\0'))[0]

    def read(self, n=-1):
        try:
            return os.read(self.fd, n if n > 0 else 4096) or None
        except BlockingIOError:
            return None

    def write(self, data):
        view = memoryview(bytes(data))
        while view:
            try:
                sent = os.write(self.fd, view)
                view = view[sent:]
            except BlockingIOError:
                select.select([], [self.fd], [], 0.05)  # a UART blocks while its TX FIFO is full
        return len(data)


class ResetLine:
    # Plays a Pin on the other board's reset line: value(0) asserts reset, value(1) releases it.
    def __init__(self, name):
        self.name = name

    def value(self, level=None):
        if level is not None:
            print(json.dumps({'reset_line': self.name, 'level': level}), flush=True)
        return 1
