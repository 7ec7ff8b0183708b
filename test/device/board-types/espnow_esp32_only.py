# ESP-NOW calls an ESP32 has and an ESP8266 lacks (MicroPython 1.27 espnow docs, "(ESP32 only)").
import espnow
e = espnow.ESPNow()
e.stats()
e.get_peers()
e.add_peer(b'\xff' * 6, channel=1)
e.send(b'hello')
print(e.peers_table)
e.mod_peer(b'\xff' * 6, None, 1)
