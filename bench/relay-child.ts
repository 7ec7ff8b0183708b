/**
 * A process that does no work: bytes from its first connection are written to its second. The write
 * scenario's second floor: the hub's path crosses two process boundaries (controller -> hub -> device),
 * and on a small VM each crossing can wait for a sleeping CPU; this measures that cost alone.
 */
import { createServer, type Socket } from 'node:net';

const sockets: Socket[] = [];
const server = createServer((socket) => {
  socket.setNoDelay(true);
  sockets.push(socket);
  if (sockets.length === 1) socket.on('data', (bytes) => sockets[1]?.write(bytes));
  socket.on('close', () => process.exit(0));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
