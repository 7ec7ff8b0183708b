# Runs a device program on CPython as a board would run main.py:
#   MQTTKIT_ROOT=/tmp/dev python3 device/micropython/pc/run.py device/micropython/examples/switch.py
# The PC stand-in (mqttkit_pc_port) becomes `mqttkit.port`; MQTTKIT_ROOT stands for the board's
# filesystem. A reset starts the program again with fresh modules, after the "bootloader" ran; deep
# sleep ends it.
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # device/micropython: the library
sys.path.insert(0, HERE)

import mqttkit_pc_port as port  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: run.py <program.py> [arguments]')
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    root = os.environ.get('MQTTKIT_ROOT', '.')
    while True:
        for name in [n for n in sys.modules if n == 'mqttkit' or n.startswith('mqttkit.')]:
            del sys.modules[name]  # a reboot forgets everything but the filesystem
        port.install(root)
        port.firmware_boot()
        try:
            runpy.run_path(script, run_name='__main__')
            return
        except port.Reset:
            port.stop_watchdog()
            time.sleep(0.1)  # a board takes a moment to boot
        except port.DeepSleep:
            return


main()
