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

/**
 * The newest datagrams the kernel queued to journald: as many as its socket queue can hold unread. A journald that is
 * killed (not socket-activated: its socket dies with it) loses what sat in that queue, and the sender cannot tell how
 * much it had read; these are sent again to its successor, which turns that loss into duplicates.
 */
export class UnreadWindow {
  private datagrams: Buffer[] = [];
  private first = 0;
  private held = 0;

  constructor(private readonly limits: { datagrams: number; bytes: number }) {}

  get bytes(): number {
    return this.held;
  }

  add(datagram: Buffer): void {
    this.datagrams.push(datagram);
    this.held += datagram.length;
    while (this.datagrams.length - this.first > this.limits.datagrams || this.held > this.limits.bytes) this.dropOldest();
  }

  /** Gives up the oldest datagrams until `bytes` are freed (or none is left). */
  release(bytes: number): void {
    const target = Math.max(0, this.held - bytes);
    while (this.held > target) this.dropOldest();
  }

  /** Everything held, oldest first; the window is empty afterwards. */
  takeAll(): Buffer[] {
    const all = this.datagrams.slice(this.first);
    this.datagrams = [];
    this.first = 0;
    this.held = 0;
    return all;
  }

  private dropOldest(): void {
    this.held -= this.datagrams[this.first].length;
    this.datagrams[this.first++] = EMPTY;
    // Compact now and then instead of shifting an array per datagram.
    if (this.first >= 1024 && this.first * 2 >= this.datagrams.length) {
      this.datagrams = this.datagrams.slice(this.first);
      this.first = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);
