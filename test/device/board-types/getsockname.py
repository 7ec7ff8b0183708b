# Expect: fails on both ports (MicroPython sockets do not report their address).
import socket

s = socket.socket()
print(s.getsockname()[0])
