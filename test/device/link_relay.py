# The wire between a Host and a Bridge on a PC: two pseudo-terminals whose far ends this process joins,
# so the test can cut the wire, mend it, or make it noisy. Prints {"host": <pty>, "bridge": <pty>} and
# then takes commands on stdin, one a line:
#   cut | mend | clean | noise <seed> | pace <baud> | quit
# noise: every chunk in either direction may get random garbage before it, lose its tail (a partial
# frame), have a bit flipped, or be sent twice; seeded, so a failing run can be replayed.
# pace: each direction carries at most baud / 10 bytes a second (8N1: ten bits a byte), as a UART at that
# speed does; `pace 0` carries bytes as fast as they come (the default).
import json
import os
import random
import select
import sys
import time
import tty


def open_pair():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)  # a far end nobody reads fills up: drop, never stall the other way
    return master, slave, os.ttyname(slave)


def main():
    host_m, host_s, host_path = open_pair()
    bridge_m, bridge_s, bridge_path = open_pair()
    print(json.dumps({'host': host_path, 'bridge': bridge_path}), flush=True)
    cut = False
    noise = None
    baud = 0
    waiting = {host_m: bytearray(), bridge_m: bytearray()}  # paced bytes not yet on the far side
    credit = {host_m: 0.0, bridge_m: 0.0}  # bytes each line may carry now: a token bucket of a FIFO's size
    last = time.monotonic()
    counts = {'chunks': 0, 'garbage': 0, 'truncated': 0, 'flipped': 0, 'duplicated': 0, 'dropped_while_cut': 0}
    peers = {host_m: bridge_m, bridge_m: host_m}
    def carry(fd, chunk):
        try:
            os.write(peers[fd], chunk)
        except OSError:
            pass

    while True:
        now = time.monotonic()
        for fd, data in waiting.items():
            credit[fd] = min(64.0, credit[fd] + (now - last) * baud / 10)
            n = min(len(data), int(credit[fd]))
            if n:
                chunk = bytes(data[:n])
                del data[:n]
                credit[fd] -= n
                carry(fd, chunk)
        last = now
        busy = any(waiting.values())
        ready, _, _ = select.select([host_m, bridge_m, sys.stdin], [], [], 0.002 if busy else 1)
        for fd in ready:
            if fd is sys.stdin:
                line = sys.stdin.readline()
                if not line or line.strip() == 'quit':
                    return
                word = line.split()
                if word[0] == 'cut':
                    cut = True
                elif word[0] == 'mend':
                    cut = False
                elif word[0] == 'clean':
                    noise = None
                elif word[0] == 'noise':
                    noise = random.Random(int(word[1]))
                elif word[0] == 'pace':
                    baud = int(word[1])
                print(json.dumps({'done': word[0], 'counts': counts}), flush=True)
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue  # the far end is closed (a board restarting): nothing to carry
            counts['chunks'] += 1
            if cut:
                counts['dropped_while_cut'] += len(data) + sum(len(w) for w in waiting.values())
                for w in waiting.values():
                    del w[:]
                continue
            out = [data]
            if noise is not None:
                r = noise.random()
                if r < 0.15:
                    out = [bytes(noise.getrandbits(8) for _ in range(noise.randint(1, 40))), data]
                    counts['garbage'] += 1
                elif r < 0.25 and len(data) > 2:
                    out = [data[:noise.randint(1, len(data) - 1)]]
                    counts['truncated'] += 1
                elif r < 0.35:
                    flipped = bytearray(data)
                    flipped[noise.randrange(len(data))] ^= 1 << noise.randrange(8)
                    out = [bytes(flipped)]
                    counts['flipped'] += 1
                elif r < 0.40:
                    out = [data, data]
                    counts['duplicated'] += 1
            for chunk in out:
                if baud:
                    waiting[fd].extend(chunk)
                else:
                    carry(fd, chunk)


main()
