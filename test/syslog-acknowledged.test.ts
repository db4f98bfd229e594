// A syslog stream frame counts as sent once the peer's TCP acknowledged it: the native send-queue probe, and the
// transport's rule on top of it, against a loopback peer that stops reading.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { socketFd, socketQueueAddon } from '../src/sinks/syslog/socket-queue.js';
import { StreamTransport } from '../src/sinks/syslog/stream-transport.js';
import { startStalledPeer, type StalledPeer } from './helpers/stalled-peer.js';
import { sleep, waitFor } from './helpers/wait.js';

let peer: StalledPeer | undefined;
afterEach(async () => {
  await peer?.close();
  peer = undefined;
});

/**
 * Bytes that reached the peer and it did not read: its kernel's receive queues (`/proc/net/tcp` rx_queue), and what
 * Node read into a paused socket's buffer before it stopped reading.
 */
function peerHolds(stalled: StalledPeer): number {
  const local = `0100007F:${stalled.port.toString(16).toUpperCase().padStart(4, '0')}`;
  let inNode = 0;
  for (const socket of stalled.sockets) inNode += socket.readableLength;
  return inNode + readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === local && fields[3] === '01')
    .reduce((sum, fields) => sum + parseInt(fields[4].split(':')[1], 16), 0);
}

/** Reads and discards everything the peer's connections hold and get from now on. */
function drainPeer(stalled: StalledPeer): void {
  for (const socket of stalled.sockets) socket.resume();
}

describe('native/socket-queue.c', () => {
  it('reports the send queue the peer has not acknowledged, and 0 once the peer took it all', async () => {
    const addon = socketQueueAddon();
    expect(addon?.unacknowledged).toBeTypeOf('function');
    peer = await startStalledPeer();
    const socket = connect({ host: '127.0.0.1', port: peer.port }).on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    const fd = socketFd(socket)!;
    expect(addon!.unacknowledged(fd)).toBe(0);
    for (let i = 0; i < 128; i++) socket.write(Buffer.alloc(64 * 1024));
    await waitFor(() => addon!.unacknowledged(fd) > 0, { what: 'a send queue the stalled peer did not acknowledge' });
    // What the peer took (acknowledged) + the send queue + what Node holds covers all written: never less. (A write
    // the kernel took in part counts whole in writableLength, so it may be more.)
    expect(peerHolds(peer) + addon!.unacknowledged(fd) + socket.writableLength).toBeGreaterThanOrEqual(128 * 64 * 1024);
    drainPeer(peer);
    await waitFor(() => addon!.unacknowledged(fd) === 0 && socket.writableLength === 0, { what: 'everything acknowledged' });
    socket.destroy();
    expect(socketFd(socket)).toBeUndefined();
    expect(addon!.unacknowledged(1 << 20)).toBe(-1);
    expect(() => addon!.unacknowledged('x' as never)).toThrow(/unacknowledged\(fd: number\)/);
  });
});

describe('StreamTransport: sent means acknowledged by the peer', () => {
  const FRAME_BYTES = 64 * 1024;

  function transport(port: number, replayMaxBytes: number) {
    const counted = { acknowledged: 0, unacknowledged: 0, unreplayable: 0 };
    const logs: Record<string, unknown>[] = [];
    const stream = new StreamTransport({
      open: () => {
        const socket = connect({ host: '127.0.0.1', port });
        return { socket, tcp: socket };
      },
      peer: `tcp://127.0.0.1:${port}`,
      tls: false,
      connectTimeoutMs: 2000,
      replay: { maxBytes: replayMaxBytes, maxAgeMs: 5000 },
      onReconnect: () => undefined,
      onHeld: () => undefined,
      onUnreplayable: (_lines, bytes) => (counted.unreplayable += bytes),
      onAcknowledged: (_lines, bytes) => (counted.acknowledged += bytes),
      onUnacknowledged: (_lines, bytes) => (counted.unacknowledged += bytes),
      log: pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    });
    /** Writes `count` frames of FRAME_BYTES, one stream line each, one after the other; resolves with how many went. */
    const writeFrames = async (count: number, done: { frames: number }): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await stream.write(() => stream.frameSpace(FRAME_BYTES, 0).fill(0x61), 1, FRAME_BYTES);
        done.frames++;
      }
    };
    return { stream, counted, logs, writeFrames };
  }

  it('counts only what the peer acknowledged, and stops writing while the window is full of the rest', async () => {
    peer = await startStalledPeer();
    const { stream, counted, writeFrames } = transport(peer.port, 1 << 20);
    expect(stream.confirmsDelivery).toBe(true);
    const done = { frames: 0 };
    const writing = writeFrames(256, done);
    await sleep(500);
    // The peer's kernel took some (acknowledged), the window of 1 MiB holds the rest, and nothing more is written.
    const inPeer = peerHolds(peer);
    expect(counted.acknowledged).toBeLessThanOrEqual(inPeer);
    expect(done.frames * FRAME_BYTES).toBeLessThanOrEqual(inPeer + (1 << 20));
    expect(done.frames).toBeLessThan(256);
    drainPeer(peer);
    await writing;
    await stream.drain();
    expect(counted.acknowledged).toBe(256 * FRAME_BYTES);
    stream.close();
    expect(counted.unacknowledged).toBe(0);
  });

  it('what the peer never acknowledged counts as dropped at close, never as sent', async () => {
    peer = await startStalledPeer();
    const { stream, counted, logs, writeFrames } = transport(peer.port, 1 << 20);
    const done = { frames: 0 };
    const writing = writeFrames(256, done).catch((err: Error) => err);
    await sleep(500);
    stream.close();
    expect(await writing).toBeInstanceOf(Error);
    expect(counted.acknowledged + counted.unacknowledged).toBe(done.frames * FRAME_BYTES);
    expect(counted.unacknowledged).toBeGreaterThan(0);
    expect(counted.acknowledged).toBeLessThanOrEqual(peerHolds(peer));
    expect(logs.find((l) => String(l.msg).includes('(replay_overflow)'))).toMatchObject({ level: 50, bytes: counted.unacknowledged });
  });

  it('replay off: a frame counts as sent when the kernel took it (at most once), as without the addon', async () => {
    peer = await startStalledPeer();
    const { stream } = transport(peer.port, 0);
    expect(stream.confirmsDelivery).toBe(false);
    stream.close();
  });
});
