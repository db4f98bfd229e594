// The frame ring: frames are encoded into it and kept there for replay until newer ones overwrite them.
import { describe, expect, it } from 'vitest';
import { FrameRing } from '../src/sinks/frame-ring.js';

/** Reserves space for `text`, fills it, and marks it written as the transport does: one line per byte. */
function put(ring: FrameRing, text: string, at: number): Buffer {
  const space = ring.reserve(text.length);
  space.write(text, 'latin1');
  ring.written(at, text.length, text.length);
  return space;
}

const kept = (ring: FrameRing): string[] => ring.replayable().map((frames) => frames.toString('latin1'));

describe('FrameRing', () => {
  it('keeps the newest written frames that fit; newer frames overwrite the oldest', () => {
    const ring = new FrameRing(10, 1000);
    const first = put(ring, 'aaaa', 0);
    put(ring, 'bbbb', 1);
    expect(kept(ring)).toEqual(['aaaa', 'bbbb']);
    // 'cccc' does not fit after 'bbbb': it goes to the start, over 'aaaa', in the same memory.
    const third = put(ring, 'cccc', 2);
    expect(third.buffer).toBe(first.buffer);
    expect(third.byteOffset).toBe(first.byteOffset);
    expect(kept(ring)).toEqual(['bbbb', 'cccc']);
    expect(ring.windowBytes).toBe(10);
  });

  it('frames not yet written are not replayable, and stay where they are until written', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'sent', 0);
    const pending = ring.reserve(7);
    pending.write('pending');
    expect(kept(ring)).toEqual(['sent']);
    // However long their write takes to succeed, nothing else is reserved meanwhile: the window stays as it was.
    ring.written(5, 1, 7);
    expect(kept(ring)).toEqual(['sent', 'pending']);
  });

  it('forget() gives up the kept frames and returns the stream lines and bytes they carried', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'ab', 0);
    put(ring, 'cde', 1);
    ring.reserve(4);
    expect(ring.forget()).toEqual({ lines: 5, bytes: 5 });
    expect(kept(ring)).toEqual([]);
  });

  it('rewritten() restarts the age of the kept frames (they were replayed)', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'old', 0);
    ring.rewritten(900);
    ring.expire(1500);
    expect(kept(ring)).toEqual(['old']);
  });

  it("the encoder's scratch after the frames overwrites older frames, but is neither kept nor skipped", () => {
    const ring = new FrameRing(16, 1000);
    put(ring, 'aaaa', 0);
    put(ring, 'bbbb', 1);
    put(ring, 'cccc', 2);
    // 'dd' and 4 bytes of scratch do not fit after 'cccc': they go to the start. 'dd' alone would cover 'aaaa' only,
    // the scratch covers 'bbbb' too.
    const space = ring.reserve(2, 4);
    expect(space.length).toBe(6);
    space.write('ddSCRA', 'latin1');
    ring.written(3, 1, 2);
    expect(kept(ring)).toEqual(['cccc', 'dd']);
    // The next frames start right after 'dd', over the scratch.
    const next = put(ring, 'ee', 4);
    expect(next.byteOffset - space.byteOffset).toBe(2);
    expect(kept(ring)).toEqual(['cccc', 'dd', 'ee']);
  });

  it('expire() forgets frames the kernel took more than maxAgeMs ago', () => {
    const ring = new FrameRing(100, 1000);
    put(ring, 'old', 0);
    put(ring, 'new', 900);
    ring.expire(1500);
    expect(kept(ring)).toEqual(['new']);
  });

  it('frames larger than the ring get a buffer of their own, kept only while they are the newest', () => {
    const ring = new FrameRing(8, 1000);
    put(ring, 'ab', 0);
    put(ring, 'x'.repeat(20), 1);
    expect(kept(ring)).toEqual(['x'.repeat(20)]);
    put(ring, 'cd', 2);
    expect(kept(ring)).toEqual(['cd']);
    expect(ring.windowBytes).toBe(8);
  });

  it('capacity 0 (replay off): one reused scratch buffer, nothing kept or counted', () => {
    const ring = new FrameRing(0, 0);
    const first = put(ring, 'abcd', 0);
    const second = put(ring, 'ef', 1);
    expect(second.buffer).toBe(first.buffer);
    expect(kept(ring)).toEqual([]);
    expect(ring.windowBytes).toBe(0);
  });
});
