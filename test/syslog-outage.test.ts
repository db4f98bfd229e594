// The syslog sink through the built helper against a receiver that is killed and restarted while 64 KiB arrivals
// stream in: what arrived plus what the helper counts as dropped must be every line written.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunks, numberedLines } from './helpers/data.js';
import {
  ARRIVAL_BYTES,
  endAndSummarize,
  expectEveryLineAccounted,
  missingLines,
  OUTAGES,
  startHelperWithSink,
  streamWithOutages,
  type OutagePlan,
} from './helpers/outage.js';
import { freeTcpPort, freeUdpPort, makeCerts, type SyslogTransport, type TestCerts } from './helpers/rsyslog.js';
import type { PipedProcess } from './helpers/spawn.js';
import { SyslogReceiver } from './helpers/syslog-receiver.js';
import { sleep, waitFor } from './helpers/wait.js';

let certs: TestCerts;
beforeAll(() => {
  certs = makeCerts(join(mkdtempSync(join(tmpdir(), 'mls-outage-')), 'certs'));
});

const LINE_BYTES = 100;

/** A receiver of `transport` on a free port, started. */
async function startReceiver(transport: SyslogTransport, label: string, queueBytes = 0): Promise<SyslogReceiver> {
  const port = transport === 'udp' ? await freeUdpPort() : await freeTcpPort();
  const receiver = new SyslogReceiver(transport, port, label, certs, queueBytes);
  await receiver.start();
  return receiver;
}

/** The helper as the agent starts it, with one syslog sink to the receiver. */
function startHelper(receiver: SyslogReceiver, options: Record<string, unknown> = {}): Promise<PipedProcess> {
  const sink: Record<string, unknown> = { type: 'syslog', transport: receiver.transport, port: receiver.port, ...options };
  if (receiver.transport === 'tls') sink.tls = { ca_file: certs.ca, cert_file: certs.clientCert, key_file: certs.clientKey };
  if (receiver.transport === 'udp') sink.max_message_bytes = '4KB';
  return startHelperWithSink(sink);
}

describe('syslog sink: a receiver that goes away mid-stream', () => {
  it.each(['tcp', 'tls'] as const)(
    '%s: a reset mid-stream and the receiver back 0.5 s later: every line arrives, none counted sent that did not',
    async (transport) => {
      const label = `reset-${transport}`;
      const total = 30_000;
      // The receiver dies with its last 256 KB of messages unwritten: a quarter of the 1 MB replay window.
      const receiver = await startReceiver(transport, label, 256 * 1024);
      const helper = await startHelper(receiver);
      const arrivals = chunks(numberedLines(total, LINE_BYTES, label), ARRIVAL_BYTES);
      const half = Math.floor(arrivals.length / 2);
      const write = async (part: Buffer[]): Promise<void> => {
        for (const arrival of part) {
          await helper.write(arrival);
          await sleep(20);
        }
      };
      await write(arrivals.slice(0, half));
      await waitFor(() => receiver.received().length > 0, { what: 'the first lines' });
      await receiver.kill();
      const back = sleep(500).then(() => receiver.start());
      await write(arrivals.slice(half));
      await back;
      const summary = await endAndSummarize(helper);
      await receiver.drained();
      const missing = missingLines(receiver.received(), total);
      await receiver.close();
      const losses = helper.diagnostics().filter((d) => d.msg.startsWith('syslog connection lost'));
      expect({ missing: missing.length, first: missing[0], last: missing.at(-1) }, JSON.stringify(losses)).toEqual({
        missing: 0,
        first: undefined,
        last: undefined,
      });
      expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
      expect(summary.reconnects).toBeGreaterThan(0);
    },
  );
});

describe('syslog sink: a receiver that stops reading, then is killed', () => {
  it.each(['tcp', 'tls'] as const)(
    '%s: a line is counted sent only once the receiver acknowledged it; the rest is sent again or counted dropped',
    async (transport) => {
      const label = `stuck-${transport}`;
      const total = 60_000;
      const receiver = await startReceiver(transport, label);
      const helper = await startHelper(receiver, { sd_params: ['stream'] });
      const arrivals = chunks(numberedLines(total, LINE_BYTES, label), ARRIVAL_BYTES);
      const first = Math.floor(arrivals.length / 10);
      for (const arrival of arrivals.slice(0, first)) await helper.write(arrival);
      await waitFor(() => receiver.received().length > 0, { what: 'the first lines' });
      // It stops reading: its socket buffer fills (acknowledged), then the helper's send queue (not acknowledged,
      // megabytes of it on loopback, more than the 1 MB replay window), then the sink's buffer.
      receiver.pauseReading();
      for (const arrival of arrivals.slice(first)) {
        await helper.write(arrival);
        await sleep(2);
      }
      await sleep(1000);
      // What its kernel acknowledged and it never read: a kill loses it, and no TCP sender can tell.
      const tcpLost = Math.ceil(receiver.unreadBytes() / receiver.frameBytes) + (transport === 'tls' ? Math.ceil(16_384 / receiver.frameBytes) : 0) + 1;
      await receiver.kill();
      await sleep(300);
      await receiver.start();
      const summary = await endAndSummarize(helper);
      await receiver.drained();
      const received = receiver.received();
      const missing = missingLines(received, total);
      await receiver.close();
      const context = JSON.stringify({ missing: missing.length, first: missing[0], last: missing.at(-1), tcpLost, summary });
      expect(summary.linesIn, context).toBe(total);
      expect(summary.bufferedLines, context).toBe(0);
      // Counted sent only what reached the receiver: what it read, or what its kernel had acknowledged.
      expect(summary.linesSent as number, context).toBeLessThanOrEqual(total - missing.length + tcpLost);
      expect(missing.length, context).toBeLessThanOrEqual((summary.linesDropped as number) + tcpLost);
    },
  );
});

describe('syslog sink: every line is received or counted as dropped, whatever the outages', () => {
  const SEEDS = [1, 2, 3];
  const plan = (seed: number, label: string): OutagePlan => ({
    seed,
    label,
    lines: 20_000,
    lineBytes: LINE_BYTES,
    ...OUTAGES,
    maxPauseMs: 40,
  });

  it.each(['tcp', 'tls', 'udp'] as const)(`%s: seeds ${SEEDS.join(', ')} side by side`, async (transport) => {
    await Promise.all(
      SEEDS.map(async (seed) => {
        const label = `prop-${transport}-${seed}`;
        // TCP and TLS: each kill also loses the receiver's last 256 KB, which only the replay window can make up.
        const receiver = await startReceiver(transport, label, transport === 'udp' ? 0 : 256 * 1024);
        // What a killed receiver had acknowledged and not read is lost beyond any sender's sight, and only the
        // window of recently acknowledged frames makes it up. Three seeds side by side on a loaded machine left more
        // than the default 1 MB unread at a kill (a clean-clone run lost 560 lines so): a 4 MB window covers that.
        // The stop-reading test above checks the acknowledgement rule itself on the default window.
        const helper = await startHelper(receiver, { sd_params: ['stream'], ...(transport === 'udp' ? {} : { replay_max_bytes: '4MB' }) });
        const run = await streamWithOutages(helper, receiver, plan(seed, label));
        const summary = await endAndSummarize(helper);
        await receiver.drained();
        const received = [...receiver.received()];
        const lostUnseen = receiver.lostUnseen();
        await receiver.close();
        const total = plan(seed, label).lines;
        if (transport !== 'udp') {
          // At least once: with the outage fitting in the buffer, nothing is lost, and nothing counted dropped.
          expectEveryLineAccounted(summary, received, run, total);
          expect(summary.linesDropped).toBe(0);
          return;
        }
        // UDP: every line is counted sent or dropped, but a datagram the kernel took and then lost (nobody listening,
        // a full receive buffer) counts as sent: the sink cannot see it. Those, and only those, are missing too.
        expect(summary).toMatchObject({ linesIn: total, linesSent: total - (summary.linesDropped as number), bufferedLines: 0 });
        expect(missingLines(received, total).length, JSON.stringify(run.outages)).toBe((summary.linesDropped as number) + lostUnseen);
      }),
    );
  });
});
