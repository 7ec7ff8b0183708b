# A relay on a GPIO pin (or, with pin=None, a switch that remembers its state in RAM).
try:
    from machine import Pin
except ImportError:  # the PC stand-in and the simulator have no pins
    Pin = None


class Relay:
    def __init__(self, pin=None):
        self._pin = Pin(pin, Pin.OUT) if Pin is not None and pin is not None else None
        self.on = False

    def set(self, on):
        self.on = bool(on)
        if self._pin is not None:
            self._pin.value(1 if self.on else 0)
