// The frame ring: frames are encoded into it and kept there for replay; newer frames overwrite only frames the peer
// acknowledged.
import { describe, expect, it } from 'vitest';
import { FrameRing } from '../src/sinks/syslog/frame-ring.js';

/**
 * Reserves space for `text`, fills it, and marks it written as the transport does (one line per byte), ending at
 * `until` of the connection; `acked` acknowledges everything up to there at once (what the transport does without
 * acknowledgements).
 */
function put(ring: FrameRing, text: string, until: number, acked = true): Buffer {
  const space = ring.reserve(text.length)!;
  space.write(text, 'latin1');
  ring.written(until, text.length, text.length);
  if (acked) ring.acknowledge(until, until);
  return space;
}

const kept = (ring: FrameRing): string[] => ring.replayable().map((frames) => frames.toString('latin1'));

describe('FrameRing', () => {
  it('keeps the newest acknowledged frames that fit; newer frames overwrite the oldest', () => {
    const ring = new FrameRing(10, 1000);
    const first = put(ring, 'aaaa', 4);
    put(ring, 'bbbb', 8);
    expect(kept(ring)).toEqual(['aaaa', 'bbbb']);
    // 'cccc' does not fit after 'bbbb': it goes to the start, over 'aaaa', in the same memory.
    const third = put(ring, 'cccc', 12);
    expect(third.buffer).toBe(first.buffer);
    expect(third.byteOffset).toBe(first.byteOffset);
    expect(kept(ring)).toEqual(['bbbb', 'cccc']);
    expect(ring.windowBytes).toBe(10);
  });

  it('unacknowledged frames are never overwritten: no room until the peer acknowledged them', () => {
    const ring = new FrameRing(10, 1000);
    put(ring, 'aaaa', 4, false);
    put(ring, 'bbbb', 8, false);
    expect(ring.unacknowledged).toBe(true);
    expect(ring.reserve(4)).toBeUndefined();
    // The peer acknowledged 6 bytes: 'aaaa' is through, 'bbbb' only in part.
    expect(ring.acknowledge(6, 100)).toEqual({ lines: 4, bytes: 4 });
    expect(ring.acknowledge(6, 100)).toEqual({ lines: 0, bytes: 0 });
    const third = ring.reserve(4)!;
    third.write('cccc', 'latin1');
    ring.written(12, 4, 4);
    expect(kept(ring)).toEqual(['bbbb', 'cccc']);
    expect(ring.acknowledge(12, 200)).toEqual({ lines: 8, bytes: 8 });
    expect(ring.unacknowledged).toBe(false);
  });

  it('a lost connection: frames are placed anew by the replay, and acknowledged on the new connection', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'acked', 5);
    put(ring, 'lost', 9, false);
    ring.connectionLost();
    // Nothing written on the new connection yet: nothing can be acknowledged there.
    expect(ring.acknowledge(1000, 10)).toEqual({ lines: 0, bytes: 0 });
    expect(ring.replay(3).map((b) => b.toString('latin1'))).toEqual(['acked', 'lost']);
    // On the new connection they end at 3 + 5 and 3 + 9: counted once, whatever was acknowledged before.
    expect(ring.acknowledge(11, 20)).toEqual({ lines: 0, bytes: 0 });
    expect(ring.acknowledge(12, 20)).toEqual({ lines: 4, bytes: 4 });
  });

  it('frames not yet written are not replayable, and stay where they are until written', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'sent', 4);
    const pending = ring.reserve(7)!;
    pending.write('pending');
    expect(kept(ring)).toEqual(['sent']);
    // However long their write takes to succeed, nothing else is reserved meanwhile: the window stays as it was.
    ring.written(11, 1, 7);
    expect(kept(ring)).toEqual(['sent', 'pending']);
  });

  it('forget() gives up the kept frames and returns the stream lines and bytes they carried, acknowledged or not', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'ab', 2);
    put(ring, 'cde', 5, false);
    ring.reserve(4);
    expect(ring.forget()).toEqual({ acknowledged: { lines: 2, bytes: 2 }, unacknowledged: { lines: 3, bytes: 3 } });
    expect(kept(ring)).toEqual([]);
  });

  it("the encoder's scratch after the frames overwrites older frames, but is neither kept nor skipped", () => {
    const ring = new FrameRing(16, 1000);
    put(ring, 'aaaa', 4);
    put(ring, 'bbbb', 8);
    put(ring, 'cccc', 12);
    // 'dd' and 4 bytes of scratch do not fit after 'cccc': they go to the start. 'dd' alone would cover 'aaaa' only,
    // the scratch covers 'bbbb' too.
    const space = ring.reserve(2, 4)!;
    expect(space.length).toBe(6);
    space.write('ddSCRA', 'latin1');
    ring.written(14, 1, 2);
    expect(kept(ring)).toEqual(['cccc', 'dd']);
    // The next frames start right after 'dd', over the scratch.
    const next = put(ring, 'ee', 16);
    expect(next.byteOffset - space.byteOffset).toBe(2);
    expect(kept(ring)).toEqual(['cccc', 'dd', 'ee']);
  });

  it('expire() forgets frames acknowledged more than maxAgeMs ago, never unacknowledged ones', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'old', 3);
    ring.reserve(3)!.write('new', 'latin1');
    ring.written(6, 3, 3);
    ring.acknowledge(6, 900);
    put(ring, 'unacked', 13, false);
    ring.expire(1500);
    expect(kept(ring)).toEqual(['new', 'unacked']);
    ring.expire(1_000_000);
    expect(kept(ring)).toEqual(['unacked']);
  });

  it('frames larger than the ring get a buffer of their own, kept only while they are the newest', () => {
    const ring = new FrameRing(8, 1000);
    put(ring, 'ab', 2);
    put(ring, 'x'.repeat(20), 22);
    expect(kept(ring)).toEqual(['x'.repeat(20)]);
    put(ring, 'cd', 24);
    expect(kept(ring)).toEqual(['cd']);
    expect(ring.windowBytes).toBe(8);
  });

  it('frames larger than the ring wait for every frame to be acknowledged, and the ring waits for them', () => {
    const ring = new FrameRing(8, 1000);
    put(ring, 'ab', 2, false);
    expect(ring.reserve(20)).toBeUndefined();
    ring.acknowledge(2, 0);
    put(ring, 'x'.repeat(20), 22, false);
    expect(ring.reserve(2)).toBeUndefined();
    ring.acknowledge(22, 0);
    expect(ring.reserve(2)).toBeDefined();
  });

  it('capacity 0 (replay off): one reused scratch buffer, nothing kept or counted', () => {
    const ring = new FrameRing(0, 0);
    const first = put(ring, 'abcd', 4);
    const second = put(ring, 'ef', 6);
    expect(second.buffer).toBe(first.buffer);
    expect(kept(ring)).toEqual([]);
    expect(ring.windowBytes).toBe(0);
  });
});
