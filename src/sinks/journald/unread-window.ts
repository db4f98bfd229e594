import { readFileSync } from 'node:fs';

/** What a kernel without readable sysctls (or a test) is assumed to allow: systemd's and Linux's defaults. */
const FALLBACK_QUEUE_DATAGRAMS = 512;
const FALLBACK_SEND_BUFFER_BYTES = 212_992;

function sysctl(path: string, fallback: number): number {
  try {
    const value = Number(readFileSync(path, 'latin1').trim());
    return Number.isSafeInteger(value) && value > 0 ? value : fallback;
  } catch {
    return fallback;
  }
}

/**
 * The most a journald socket's queue can hold of one sender's datagrams: the kernel queues up to
 * net.unix.max_dgram_qlen datagrams (plus the one that fills it), and a sender has at most its send buffer
 * (net.core.wmem_default) of them in flight.
 */
export function queueLimits(): { datagrams: number; bytes: number } {
  return {
    datagrams: sysctl('/proc/sys/net/unix/max_dgram_qlen', FALLBACK_QUEUE_DATAGRAMS) + 1,
    bytes: sysctl('/proc/sys/net/core/wmem_default', FALLBACK_SEND_BUFFER_BYTES),
  };
}

/** A datagram, with the stream's lines and bytes it carries: what the sink counted sent for it. */
export interface SentDatagram {
  datagram: Buffer;
  lines: number;
  bytes: number;
}

/**
 * The newest datagrams the kernel queued to journald: as many as its socket queue can hold unread, plus the one before
 * them, which journald may have taken off the queue and not yet written. A journald that is killed (not
 * socket-activated: its socket dies with it) loses those, and the sender cannot tell how much it had read; these are
 * sent again to its successor, which turns that loss into duplicates.
 */
export class UnreadWindow {
  private sent: SentDatagram[] = [];
  private first = 0;
  private held = 0;

  constructor(private readonly limits: { datagrams: number; bytes: number }) {}

  get bytes(): number {
    return this.held;
  }

  add(sent: SentDatagram): void {
    this.sent.push(sent);
    this.held += sent.datagram.length;
    // The oldest datagram kept is the one journald may hold: the rest is what its queue can.
    while (this.count() - 1 > this.limits.datagrams || this.held - this.oldest().length > this.limits.bytes) {
      this.dropOldest();
    }
  }

  /** Gives up the oldest datagrams until `bytes` are freed (or none is left). */
  release(bytes: number): void {
    const target = Math.max(0, this.held - bytes);
    while (this.held > target) this.dropOldest();
  }

  /** Everything held, oldest first; the window is empty afterwards. */
  takeAll(): SentDatagram[] {
    const all = this.sent.slice(this.first);
    this.sent = [];
    this.first = 0;
    this.held = 0;
    return all;
  }

  private count(): number {
    return this.sent.length - this.first;
  }

  private oldest(): Buffer {
    return this.sent[this.first].datagram;
  }

  private dropOldest(): void {
    this.held -= this.sent[this.first].datagram.length;
    this.sent[this.first++] = GONE;
    // Compact now and then instead of shifting an array per datagram.
    if (this.first >= 1024 && this.first * 2 >= this.sent.length) {
      this.sent = this.sent.slice(this.first);
      this.first = 0;
    }
  }
}

const GONE: SentDatagram = { datagram: Buffer.alloc(0), lines: 0, bytes: 0 };
