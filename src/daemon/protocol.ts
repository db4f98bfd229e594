import type { EarlyExit } from '../cli/early-exit.js';

/**
 * The daemon socket's protocol (native/shim.c; docs/daemon.md). Every frame: u32 length of what follows, u8 type,
 * payload, little-endian. The shim sends one hello; the daemon answers `accepted` (or `exit` at once: bad flags,
 * --help); the shim, if it has not given up on the daemon meanwhile, answers `commit`, and only then does the daemon
 * take the pipe; `exit` follows when the stream ended. Binary, because argv is raw bytes that need not be UTF-8.
 * `mesos-log-splitter status` sends a status request instead and gets the status as JSON.
 */
export const PROTOCOL_VERSION = 2;
/** A hello holds the agent's argv; Linux caps one argument at 128 KiB, and the agent passes at most six. */
export const MAX_HELLO_BYTES = 1024 * 1024;

const FRAME_HELLO = 1;
const FRAME_ACCEPTED = 2;
const FRAME_EXIT = 3;
/** `mesos-log-splitter status` -> daemon: no payload. */
const FRAME_STATUS_REQUEST = 4;
/** Daemon -> `status`: the status as one UTF-8 JSON document. */
const FRAME_STATUS = 5;
/** Shim -> daemon, after `accepted`: no payload. The shim will not fall back: the daemon may take its pipe. */
const FRAME_COMMIT = 6;
/** A daemon's status answer is larger than a hello may be: about 1 KB per stream. */
export const MAX_STATUS_BYTES = 64 * 1024 * 1024;
const HELLO_RESUMED = 1;
/** length, type, version, flags, pid, argc. */
const HELLO_HEADER = 4 + 1 + 2 + 1 + 4 + 4;

export interface Hello {
  /** The shim's pid: the daemon reads the pipe through /proc/<pid>/fd/0. */
  pid: number;
  /** The shim had handed this stream to a daemon before (this one's predecessor, or this one). */
  resumed: boolean;
  /** The agent's argv, without argv[0], byte for byte. */
  argv: Buffer[];
}

export class ProtocolError extends Error {}

/** Parses a hello once `data` holds all of it: undefined while more is to come. Throws ProtocolError on anything else. */
export function parseHello(data: Buffer): Hello | undefined {
  if (data.length < 4) return undefined;
  const length = data.readUInt32LE(0);
  if (length + 4 > MAX_HELLO_BYTES) throw new ProtocolError(`hello of ${length} bytes (at most ${MAX_HELLO_BYTES})`);
  if (length + 4 < HELLO_HEADER) throw new ProtocolError(`hello of ${length} bytes is too short`);
  if (data.length < 4 + length) return undefined;
  if (data.length > 4 + length) throw new ProtocolError('bytes after the hello');
  if (data[4] !== FRAME_HELLO) throw new ProtocolError(`frame type ${data[4]} where a hello was expected`);
  const version = data.readUInt16LE(5);
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${version} (this daemon speaks ${PROTOCOL_VERSION})`);
  const resumed = (data[7] & HELLO_RESUMED) !== 0;
  const pid = data.readUInt32LE(8);
  const argc = data.readUInt32LE(12);
  if (pid < 2 || pid > 0x3fffffff) throw new ProtocolError(`pid ${pid}`);
  const argv: Buffer[] = [];
  let at = HELLO_HEADER;
  for (let i = 0; i < argc; i++) {
    if (at + 4 > data.length) throw new ProtocolError(`argument ${i} of ${argc} is missing`);
    const size = data.readUInt32LE(at);
    if (at + 4 + size > data.length) throw new ProtocolError(`argument ${i} runs past the hello`);
    argv.push(data.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
  if (at !== data.length) throw new ProtocolError('bytes after the last argument');
  return { pid, resumed, argv };
}

/** True once `data` holds the commit, undefined while more is to come. Throws ProtocolError on anything else. */
export function isCommit(data: Buffer): true | undefined {
  if (data.length > 5) throw new ProtocolError('bytes after the commit');
  if (data.length >= 4 && data.readUInt32LE(0) !== 1) throw new ProtocolError(`frame of ${data.readUInt32LE(0)} bytes where a commit was expected`);
  if (data.length < 5) return undefined;
  if (data[4] !== FRAME_COMMIT) throw new ProtocolError(`frame type ${data[4]} where a commit was expected`);
  return true;
}

/**
 * True when `data` starts with a status request, false when it starts with another frame (a hello), undefined while
 * too little has arrived to tell. Throws ProtocolError on a status request with a payload.
 */
export function isStatusRequest(data: Buffer): boolean | undefined {
  if (data.length < 5) return undefined;
  if (data[4] !== FRAME_STATUS_REQUEST) return false;
  if (data.readUInt32LE(0) !== 1 || data.length > 5) throw new ProtocolError('a status request carries nothing');
  return true;
}

export function statusRequestFrame(): Buffer {
  return Buffer.from([1, 0, 0, 0, FRAME_STATUS_REQUEST]);
}

export function statusFrame(status: object): Buffer {
  const json = Buffer.from(JSON.stringify(status));
  const frame = Buffer.alloc(5 + json.length);
  frame.writeUInt32LE(1 + json.length, 0);
  frame[4] = FRAME_STATUS;
  json.copy(frame, 5);
  return frame;
}

/** The status document once `data` holds the whole answer: undefined while more is to come. */
export function parseStatusFrame(data: Buffer): unknown {
  if (data.length < 4) return undefined;
  const length = data.readUInt32LE(0);
  if (length + 4 > MAX_STATUS_BYTES) throw new ProtocolError(`status answer of ${length} bytes (at most ${MAX_STATUS_BYTES})`);
  if (data.length < 4 + length) return undefined;
  if (length < 1 || data[4] !== FRAME_STATUS) throw new ProtocolError(`frame type ${data[4]} where a status answer was expected`);
  try {
    return JSON.parse(data.subarray(5, 4 + length).toString('utf8'));
  } catch (err) {
    throw new ProtocolError(`status answer is not JSON: ${(err as Error).message}`);
  }
}

export function acceptedFrame(): Buffer {
  const frame = Buffer.alloc(5);
  frame.writeUInt32LE(1, 0);
  frame[4] = FRAME_ACCEPTED;
  return frame;
}

/** The shim relays stdout and stderr and exits with `code`. */
export function exitFrame(exit: EarlyExit): Buffer {
  const stdout = Buffer.from(exit.stdout);
  const stderr = Buffer.from(exit.stderr);
  const frame = Buffer.alloc(4 + 1 + 4 + 4 + stdout.length + 4 + stderr.length);
  frame.writeUInt32LE(frame.length - 4, 0);
  frame[4] = FRAME_EXIT;
  frame.writeInt32LE(exit.code, 5);
  frame.writeUInt32LE(stdout.length, 9);
  stdout.copy(frame, 13);
  frame.writeUInt32LE(stderr.length, 13 + stdout.length);
  stderr.copy(frame, 17 + stdout.length);
  return frame;
}
