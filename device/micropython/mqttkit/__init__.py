# mqttkit device library: MicroPython >= 1.20 and CPython 3.11. See docs/device.md.
from .device import Device, VERSION, run_app

__all__ = ['Device', 'VERSION', 'run_app']
