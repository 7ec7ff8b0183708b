# ESP32 (and S2/S3/C3): a settable watchdog and A/B firmware partitions (installed only on an ESP32,
# see ports.json). MicroPython docs: machine.WDT, esp32.Partition.
import machine
from esp32 import Partition

BLOCK = 4096  # Partition.writeblocks works in 4 KiB flash blocks


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def firmware_partitions():
    return {'count': len(Partition.find(Partition.TYPE_APP)), 'running': firmware_running()}


def firmware_running():
    return Partition(Partition.RUNNING).info()[4]


class PartitionSink:
    # Streams an image into the next OTA partition through one 4 KiB buffer, allocated once.
    def __init__(self):
        self.part = Partition(Partition.RUNNING).get_next_update()
        self.label = self.part.info()[4]
        self.buffer = bytearray(BLOCK)
        self.fill = 0
        self.block = 0

    def write(self, chunk):
        # chunk: any buffer (a memoryview into the receiver's buffer); copied into ours, never kept.
        taken = 0
        while taken < len(chunk):
            n = min(BLOCK - self.fill, len(chunk) - taken)
            self.buffer[self.fill:self.fill + n] = chunk[taken:taken + n]
            self.fill += n
            taken += n
            if self.fill == BLOCK:
                self.part.writeblocks(self.block, self.buffer)
                self.block += 1
                self.fill = 0

    def finish(self):
        if self.fill:
            for i in range(self.fill, BLOCK):
                self.buffer[i] = 0xFF  # erased flash
            self.part.writeblocks(self.block, self.buffer)
        self.part.set_boot()  # the bootloader tries it at the next reset; rollback unless kept

    def abort(self):
        self.fill = 0


def firmware_sink():
    return PartitionSink()


def firmware_keep():
    # [O-6] the running image proved itself: cancel the bootloader's rollback
    Partition.mark_app_valid_cancel_rollback()
    return 'firmware on %s kept' % firmware_running()
