// The daemon's one client of the agent's /state: streams starting together share requests (at most one in
// flight, few in all), every stream still gets its task, and a task the agent lists late is found on a retry.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentState, executorDirectory, startFakeAgent, type ExecutorSpec, type FakeAgent } from './helpers/agent.js';
import { killDaemons, makeDaemon, runStatus, type TestDaemon } from './helpers/daemon.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';
import type { DaemonStatus } from '../src/daemon/status.js';

/** 5 containers (default executors), each running 2 tasks in nested containers, each with stdout and stderr. */
const EXECUTORS: ExecutorSpec[] = [1, 2, 3, 4, 5].map((k) => ({
  id: `group-${k}`,
  name: `group ${k}`,
  container: `C${k}`,
  type: 'DEFAULT',
  tasks: ['a', 'b'].map((t) => ({ id: `task-${k}-${t}`, name: `task ${t}`, container: `C${k}-${t}` })),
}));

let agent: FakeAgent;
let daemon: TestDaemon;
let workDir: string;
/** A syslog TCP receiver: everything it was sent. */
let receiver: Server;
let received = '';
const streams: PipedProcess[] = [];

beforeAll(async () => {
  const { dir } = makeSandbox();
  workDir = join(dir, 'work');
  agent = await startFakeAgent({});
  receiver = createServer((socket) => socket.on('data', (chunk: Buffer) => (received += chunk.toString())));
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      agent: { url: agent.url, timeout_ms: 2000 },
      shutdown_timeout_ms: 100,
      sinks: { relay: { type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: (receiver.address() as AddressInfo).port } },
    }),
  );
  daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
  await daemon.start();
});
afterEach(async () => {
  for (const stream of streams.splice(0)) {
    await stream.end();
    await stream.exited;
  }
});
afterAll(async () => {
  killDaemons();
  await agent.close();
  receiver.close();
});

/** Every task's nested sandbox, stdout and stderr: 20 streams, with the task each belongs to. */
function twentyStreams(): { logFilename: string; task: string }[] {
  return EXECUTORS.flatMap((executor) =>
    executor.tasks.flatMap((task) => {
      const sandbox = join(executorDirectory(workDir, 'S1', 'F1', executor), 'containers', task.container!);
      mkdirSync(sandbox, { recursive: true });
      return ['stdout', 'stderr'].map((stream) => ({ logFilename: join(sandbox, stream), task: task.id }));
    }),
  );
}

async function startAll(): Promise<{ logFilename: string; task: string }[]> {
  const all = twentyStreams();
  const started = await Promise.all(all.map(({ logFilename }) => spawnLogger({ log_filename: logFilename }, { env: daemon.shimEnv('daemon') })));
  streams.push(...started);
  await Promise.all(started.map((stream) => stream.write('a line\n')));
  return all;
}

async function tasksByFile(): Promise<Record<string, string | undefined>> {
  const run = await runStatus(['--json', '--socket', daemon.socket]);
  expect(run.code, run.stderr).toBe(0);
  const doc = JSON.parse(run.stdout) as DaemonStatus;
  return Object.fromEntries(doc.streams.map((stream) => [stream.log_filename, stream.task_id]));
}

const stateRequests = (): number => agent.requests.filter((path) => path === '/state').length;

describe("the agent's /state, shared by the daemon's streams", () => {
  it('20 streams of 5 containers starting at once: one request at a time, few in all, every stream gets its task', async () => {
    agent.requests.length = 0;
    agent.maxInFlight = 0;
    agent.mode = 'ok';
    // A slow agent: requests made while one is answered would overlap.
    agent.delayMs = 300;
    agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: EXECUTORS }]);
    const all = await startAll();
    const expected = Object.fromEntries(all.map(({ logFilename, task }) => [logFilename, task]));
    await waitFor(async () => JSON.stringify(await tasksByFile()) === JSON.stringify(sorted(expected)), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'every stream to have its task',
    });
    expect(agent.maxInFlight).toBe(1);
    // One for the first streams, at most one more for those that came while it was answered.
    expect(stateRequests()).toBeGreaterThanOrEqual(1);
    expect(stateRequests()).toBeLessThanOrEqual(3);

    // The workers got the metadata: lines from now on carry each stream's task.
    await Promise.all(streams.map((stream, i) => stream.write(`enriched ${i}.\n`)));
    const missing = (): string[] =>
      all.map(({ task }, i) => ({ task, i })).filter(({ task, i }) => !new RegExp(`task_id="${task}"[^\\]]*\\] enriched ${i}\\.`).test(received)).map(({ i }) => `enriched ${i}`);
    await waitFor(() => missing().length === 0, { timeoutMs: 10_000, intervalMs: 100, what: 'every enriched line at the receiver' }).catch(() => {
      throw new Error(`not received with their task id: ${missing().join(', ')}`);
    });
  });

  it('a task the agent lists late is found on a retry shared by the waiting streams', async () => {
    agent.requests.length = 0;
    agent.maxInFlight = 0;
    agent.delayMs = 100;
    agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: [] }]);
    const all = await startAll();
    await waitFor(() => stateRequests() >= 1, { what: 'the first request' });
    setTimeout(() => (agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: EXECUTORS }])), 1500);
    const expected = Object.fromEntries(all.map(({ logFilename, task }) => [logFilename, task]));
    await waitFor(async () => JSON.stringify(await tasksByFile()) === JSON.stringify(sorted(expected)), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: 'every stream to have its task',
    });
    expect(agent.maxInFlight).toBe(1);
    // Retries 1 and 2 s after the first (then 4 s): not one schedule per stream.
    expect(stateRequests()).toBeLessThanOrEqual(4);
  });
});

describe('a worker restart', () => {
  it("the new worker gets what was found: its lines carry the task without asking the agent again", async () => {
    agent.mode = 'ok';
    agent.delayMs = 0;
    agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: EXECUTORS }]);
    const two = twentyStreams().slice(0, 2);
    for (const { logFilename } of two) {
      const stream = await spawnLogger({ log_filename: logFilename }, { env: daemon.shimEnv('daemon') });
      streams.push(stream);
      await stream.write('a line\n');
    }
    await waitFor(async () => Object.values(await tasksByFile()).filter((task) => task === 'task-1-a').length === 2, {
      what: 'both streams to have their task',
    });
    const requests = stateRequests();
    const [worker] = daemon.workerPids();
    process.kill(worker, 'SIGKILL');
    await waitFor(() => daemon.workerPids().some((pid) => pid !== worker), { timeoutMs: 10_000, what: 'a new worker' });
    await waitFor(async () => Object.values(await tasksByFile()).length === 2, { what: 'the streams served again' });
    await Promise.all(streams.map((stream, i) => stream.write(`restarted ${i}.\n`)));
    await waitFor(() => two.every(({ task }, i) => new RegExp(`task_id="${task}"[^\\]]*\\] restarted ${i}\\.`).test(received)), {
      timeoutMs: 10_000,
      what: 'the lines after the restart, with their task',
    });
    expect(stateRequests()).toBe(requests);
  });
});

describe('an agent that fails', () => {
  it('backs off: streams arriving one by one do not each make a request', async () => {
    agent.requests.length = 0;
    agent.maxInFlight = 0;
    agent.mode = 'error';
    agent.delayMs = 0;
    const all = twentyStreams().slice(0, 10);
    // One stream every 200 ms for 2 s, each of a container no answer named.
    for (const { logFilename } of all) {
      const stream = await spawnLogger({ log_filename: logFilename }, { env: daemon.shimEnv('daemon') });
      streams.push(stream);
      await stream.write('a line\n');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Requests at 0, 1 s and 3 s (the backoff doubles from 1 s); without it, one per stream.
    expect(stateRequests()).toBeGreaterThanOrEqual(2);
    expect(stateRequests()).toBeLessThanOrEqual(3);
    agent.mode = 'ok';
  });
});

const sorted = (record: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
