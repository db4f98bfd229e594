// OTLP/HTTP logs receiver for the helper+otlp variant of bench/run.mjs: listens on 127.0.0.1 and prints its port.
// Every POST is read whole, gunzipped when it says so (as a collector must before it can answer), its log records
// counted, and answered 200 with an empty ExportLogsServiceResponse.
//
// On SIGTERM it prints one JSON line, {requests, bytes, records, cpuMs, error?}, and exits. Records are counted by
// walking the protobuf wire format (ExportLogsServiceRequest.resource_logs = 1, ResourceLogs.scope_logs = 2,
// ScopeLogs.log_records = 2), not decoded further, so the receiver costs the machine as little as one can.
import { createServer } from 'node:http';
import { gunzip } from 'node:zlib';

const totals = { requests: 0, bytes: 0, records: 0 };

function varint(buf, at) {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    if (at.pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[at.pos++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
  }
}

/** Calls `onField(field, start, end)` for each length-delimited field of buf[start, end); skips the others. */
function fields(buf, start, end, onField) {
  const at = { pos: start };
  while (at.pos < end) {
    const key = varint(buf, at);
    const type = key % 8;
    if (type === 0) varint(buf, at);
    else if (type === 1) at.pos += 8;
    else if (type === 5) at.pos += 4;
    else if (type === 2) {
      const length = varint(buf, at);
      onField(Math.floor(key / 8), at.pos, at.pos + length);
      at.pos += length;
    } else throw new Error(`wire type ${type}`);
  }
  if (at.pos !== end) throw new Error('a field runs past its message');
}

function countRecords(body) {
  fields(body, 0, body.length, (f, s, e) => f === 1 && fields(body, s, e, (f2, s2, e2) => f2 === 2 && fields(body, s2, e2, (f3) => f3 === 2 && totals.records++)));
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const wire = Buffer.concat(chunks);
    totals.requests++;
    totals.bytes += wire.length;
    const answer = (err, body) => {
      try {
        if (err) throw err;
        countRecords(body);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (error) {
        totals.error ??= String(error);
        res.writeHead(400).end();
      }
    };
    if (req.headers['content-encoding'] === 'gzip') gunzip(wire, answer);
    else answer(undefined, wire);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.once('SIGTERM', () => {
  const { user, system } = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ ...totals, cpuMs: Math.round((user + system) / 1000) })}\n`);
  process.exit(0);
});
