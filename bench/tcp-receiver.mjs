// Syslog-over-TCP receiver for the forwarder variants of bench/run.mjs: listens on 127.0.0.1 and prints its port.
//
//   node bench/tcp-receiver.mjs read    reads as fast as it can and counts RFC 6587 octet-counted frames
//   node bench/tcp-receiver.mjs stall   accepts and never reads (the kernel buffers fill, then the sender's write stalls)
//
// On SIGTERM it prints one JSON line, {connections, bytes, frames, cutFrames, cpuMs, error?}, and exits; in `read`
// mode only once every connection has closed (all its bytes read), so the counts are final. cutFrames counts
// connections that closed in the middle of a frame; error says what was not octet counting. Frames are counted, not
// parsed beyond their length prefix, so the receiver costs the machine as little as a receiver can.
import { createServer } from 'node:net';

const mode = process.argv[2];
if (mode !== 'read' && mode !== 'stall') throw new Error(`usage: tcp-receiver.mjs read|stall, not ${mode}`);

const totals = { connections: 0, bytes: 0, frames: 0, cutFrames: 0 };
const SPACE = 0x20;

/** Counts the frames of one connection; the state carries a length prefix or a message body across chunks. */
function countFrames(socket) {
  let length = 0; // digits of the prefix read so far, as a number
  let remaining = 0; // body bytes still to skip; 0 while reading a prefix
  socket.on('close', () => (totals.cutFrames += remaining > 0 || length > 0 ? 1 : 0));
  socket.on('data', (chunk) => {
    totals.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (remaining > 0) {
        const skip = Math.min(remaining, chunk.length - at);
        at += skip;
        remaining -= skip;
        if (remaining === 0) totals.frames++;
        continue;
      }
      const byte = chunk[at++];
      if (byte >= 0x30 && byte <= 0x39) {
        length = length * 10 + byte - 0x30;
      } else if (byte === SPACE && length > 0) {
        remaining = length;
        length = 0;
      } else {
        totals.error ??= `not octet counting: byte ${byte} after a ${length}-byte length prefix`;
        socket.destroy();
        return;
      }
    }
  });
}

let open = 0;
let report; // set on SIGTERM: called when the last connection closes
const server = createServer({ pauseOnConnect: mode === 'stall' }, (socket) => {
  totals.connections++;
  open++;
  socket.on('error', () => undefined); // the sender may reset; what arrived is counted
  if (mode === 'read') countFrames(socket); // first: its 'close' listener must run before the report
  socket.on('close', () => --open === 0 && report?.());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.once('SIGTERM', () => {
  report = () => {
    const cpu = process.cpuUsage();
    totals.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    process.stdout.write(`${JSON.stringify(totals)}\n`, () => process.exit(0));
  };
  if (mode === 'stall' || open === 0) report();
});
