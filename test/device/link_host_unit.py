# Two Host behaviours, in CPython with the PC port; run by test/unit/link-types.test.ts, one JSON line:
# - kept: a QoS 1 message whose send failed because the link went down under a connected Device (the
#   session ends at the next step) is in the queue for the next session, not lost;
# - answers: while an OPEN waits, a STATUS "broker lost" (a late one, for a PUB of the last session) and
#   the answer to an older attempt are not taken for its answer; the answer to this attempt is.
# - held: broker messages (a command here) that arrive while an OTA transfer runs are held, not run inside
#   it, and handled in order once it ended; past 8 they are dropped and counted [L-14].
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython', 'pc'))
import mqttkit_pc_port  # noqa: E402

root = tempfile.mkdtemp()
mqttkit_pc_port.install(root)
from mqttkit import link_wire  # noqa: E402
from mqttkit.link import Host  # noqa: E402


class Quiet:
    def any(self):
        return 0

    def read(self, n):
        return b''

    def write(self, b):
        return len(b)


host = Host(Quiet(), {'device_id': 'unit-1'})
from mqttkit.link_host import LinkClient  # noqa: E402

# connected, then the link drops: the channel has no session, the Device has not noticed yet
host.client = LinkClient(host)
host.connected = True
host.channel.up = False
host.publish('LightSensor', 'CurrentAmbientLightLevel', 42)
queued = [m[1] for m in host.queue] + [m[1] for _pid, m in host.inflight]

host.connected = False
host.answer = None
host.attempt = 7
answers = []
host._deliver(link_wire.STATUS, bytes([4]) + b'not connected to the broker')
answers.append(host.answer)
host._deliver(getattr(link_wire, 'OPENED', 36), bytes([6, 3]) + b'old attempt')
answers.append(host.answer)
host._deliver(getattr(link_wire, 'OPENED', 36), bytes([7, 3]) + b'127.0.0.1:1883')
answers.append(host.answer)

host.transfer = 'a transfer'  # as LinkSource.open() sets it
before = len(host.queue)
for n in range(10):
    host._deliver(link_wire.MSG, bytes([0]) + link_wire.string('cmnd/unit-1/OTA') + b'#%d stats' % (n + 1))
during = len(host.queue) - before
host.transfer = None
host.step(0)
answered = [m[1].split(' ')[0] for m in host.queue[before:]]
held = {'during': during, 'answered': answered, 'dropped': host.stats.get('held_dropped')}
print(json.dumps({'kept': '42' in queued, 'queue': queued, 'answers': answers, 'held': held}))
