# Expect: passes on both ports: what the library needs from a board, spelled as the docs spell it.
import binascii
import gc
import hashlib
import machine
import network
import os
import select
import socket
import sys
import time

wlan = network.WLAN(network.STA_IF)
wlan.active(True)
address = wlan.ifconfig()[0] if wlan.isconnected() else None
dog = machine.WDT()
dog.feed()
started = time.ticks_ms()
gc.collect()
print(address, gc.mem_alloc(), gc.mem_free(), time.ticks_diff(time.ticks_ms(), started), os.uname().release)
print(binascii.hexlify(machine.unique_id()).decode(), sys.platform, machine.reset_cause() == machine.DEEPSLEEP_RESET)
h = hashlib.sha1()
buffer = bytearray(512)
view = memoryview(buffer)
s = socket.socket()
s.settimeout(10)
s.connect(socket.getaddrinfo('192.0.2.1', 8266, 0, socket.SOCK_STREAM)[0][-1])
n = s.readinto(view)
if n:
    h.update(view[:n])
poller = select.poll()
poller.register(s, select.POLLIN)
print(poller.poll(0), binascii.hexlify(h.digest()))
os.rename('a.tmp', 'a')
s.close()
