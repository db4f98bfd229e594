// Who wrote a stream: ids from the sandbox path, then task id, names and labels from the agent's /state, fetched
// from a real HTTP server on loopback.
import { hostname } from 'node:os';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { AgentStateClient, enrichFromState, ResponseTooLarge } from '../src/mesos/agent-state.js';
import { enrichInBackground } from '../src/mesos/enrichment.js';
import { metadataFromPath, type StreamMetadata } from '../src/mesos/metadata.js';
import {
  agentState,
  executorDirectory,
  refusedUrl,
  startFakeAgent,
  startSilentServer,
  type ExecutorSpec,
  type FakeAgent,
  type FrameworkSpec,
} from './helpers/agent.js';
import { captureLog } from './helpers/log.js';
import { sleep, waitFor } from './helpers/wait.js';

const WORK = '/var/lib/mesos';
/** agent.max_response_bytes' default. */
const CAP = DEFAULT_CONFIG.agent.maxResponseBytes;
const AGENT = 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-S3';
const FRAMEWORK = 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-0001';

const commandExecutor: ExecutorSpec = {
  id: 'web.4f1c2d3e-1111-2222-3333-444455556666',
  name: 'Command Executor (Task: web.4f1c2d3e-1111-2222-3333-444455556666) (Command: sh -c \'python3 -m http.server\')',
  container: '7a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff',
  labels: [{ key: 'owner', value: 'team-web' }],
  tasks: [
    {
      id: 'web.4f1c2d3e-1111-2222-3333-444455556666',
      name: 'web',
      labels: [
        { key: 'HAPROXY_GROUP', value: 'external' },
        { key: 'tier', value: 'frontend' },
      ],
    },
  ],
};

const customExecutor: ExecutorSpec = {
  id: 'thermos-batch-job-0-abc',
  name: 'AuroraExecutor',
  container: '0f0e0d0c-1234-5678-9abc-def012345678',
  type: 'CUSTOM',
  labels: [{ key: 'source', value: 'aurora' }],
  tasks: [{ id: 'batch-job-0-abc', name: 'batch-job', labels: [{ key: 'tier', value: 'batch' }] }],
};

const groupExecutor: ExecutorSpec = {
  id: 'instance-pod.9e8d7c6b-0000-1111-2222-333344445555',
  name: '',
  container: 'c0ffee00-0000-4000-8000-000000000001',
  type: 'DEFAULT',
  labels: [{ key: 'pod', value: 'cache' }],
  tasks: [
    { id: 'pod.instance-9e8d.redis', name: 'redis', container: 'c0ffee00-0000-4000-8000-0000000000aa', labels: [{ key: 'role', value: 'db' }] },
    { id: 'pod.instance-9e8d.sidecar', name: 'sidecar', container: 'c0ffee00-0000-4000-8000-0000000000bb' },
  ],
};

const frameworks: FrameworkSpec[] = [
  { id: FRAMEWORK, name: 'marathon', executors: [commandExecutor, groupExecutor] },
  { id: 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-0002', name: 'aurora', executors: [customExecutor] },
];
const STATE = agentState(WORK, AGENT, frameworks);
const dirOf = (executor: ExecutorSpec, framework = FRAMEWORK): string => executorDirectory(WORK, AGENT, framework, executor);

describe('metadataFromPath', () => {
  it('reads agent, framework, executor and container ids from an executor sandbox', () => {
    const meta = metadataFromPath(`${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1/stdout`);
    expect(meta).toEqual({
      stream: 'stdout',
      hostname: hostname(),
      sandbox: `${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1`,
      agent_id: 'S1',
      framework_id: 'F1',
      executor_id: 'E1',
      container_id: 'C1',
      executor_labels: {},
      task_labels: {},
    });
  });

  it('detects stderr from the file name', () => {
    expect(metadataFromPath(`${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1/stderr`).stream).toBe('stderr');
    expect(metadataFromPath(`${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1/stdout`).stream).toBe('stdout');
  });

  it('joins nested container ids with dots', () => {
    const meta = metadataFromPath(`${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1/containers/C2/containers/C3/stdout`);
    expect(meta.container_id).toBe('C1.C2.C3');
    expect(meta.executor_id).toBe('E1');
    expect(meta.sandbox).toBe(`${WORK}/slaves/S1/frameworks/F1/executors/E1/runs/C1/containers/C2/containers/C3`);
  });

  it('reads a standalone container sandbox', () => {
    const meta = metadataFromPath(`${WORK}/containers/SC1/containers/SC2/stderr`);
    expect(meta.container_id).toBe('SC1.SC2');
    expect(meta.stream).toBe('stderr');
    expect(meta.agent_id).toBeUndefined();
    expect(meta.framework_id).toBeUndefined();
    expect(meta.executor_id).toBeUndefined();
  });

  it('is not fooled by directory names in the work_dir', () => {
    for (const work of ['/srv/containers/mesos', '/data/runs/agents', '/mnt/executors/slaves/x']) {
      const meta = metadataFromPath(`${work}/slaves/S1/frameworks/F1/executors/E1/runs/C1/containers/C2/stdout`);
      expect(meta, work).toMatchObject({ agent_id: 'S1', framework_id: 'F1', executor_id: 'E1', container_id: 'C1.C2' });
    }
  });

  it('keeps ids that look like layout words', () => {
    const meta = metadataFromPath(`${WORK}/slaves/runs/frameworks/containers/executors/slaves/runs/frameworks/stdout`);
    expect(meta).toMatchObject({ agent_id: 'runs', framework_id: 'containers', executor_id: 'slaves', container_id: 'frameworks' });
  });

  it('knows nothing but the stream outside a Mesos layout, and keeps the user', () => {
    const meta = metadataFromPath('/tmp/somewhere/stdout', 'nobody');
    expect(meta).toEqual({
      stream: 'stdout',
      hostname: hostname(),
      sandbox: '/tmp/somewhere',
      executor_labels: {},
      task_labels: {},
      user: 'nobody',
    });
  });
});

describe('enrichFromState, on /state as served over HTTP', () => {
  // The realistic document, through a real HTTP server and AgentStateClient, as the helper gets it.
  let served: Awaited<ReturnType<AgentStateClient['state']>>;
  beforeAll(async () => {
    const agent = await startFakeAgent(STATE);
    try {
      served = await new AgentStateClient(agent.url, 2000, CAP).state();
    } finally {
      await agent.close();
    }
  });

  it('command task: the executor id is the task id', () => {
    const meta = metadataFromPath(`${dirOf(commandExecutor)}/stdout`);
    expect(enrichFromState(meta, served)).toEqual({
      ...meta,
      task_id: commandExecutor.tasks[0].id,
      task_name: 'web',
      framework_name: 'marathon',
      executor_name: commandExecutor.name,
      executor_labels: { owner: 'team-web' },
      task_labels: { HAPROXY_GROUP: 'external', tier: 'frontend' },
    });
  });

  it('custom executor with one task', () => {
    const meta = metadataFromPath(`${dirOf(customExecutor, 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-0002')}/stderr`);
    expect(enrichFromState(meta, served)).toMatchObject({
      stream: 'stderr',
      task_id: 'batch-job-0-abc',
      task_name: 'batch-job',
      framework_name: 'aurora',
      executor_id: 'thermos-batch-job-0-abc',
      executor_name: 'AuroraExecutor',
      executor_labels: { source: 'aurora' },
      task_labels: { tier: 'batch' },
    });
  });

  it('nested container of a task group: the task whose status names the child container', () => {
    for (const task of groupExecutor.tasks) {
      const meta = metadataFromPath(`${dirOf(groupExecutor)}/containers/${task.container}/stdout`);
      expect(meta.container_id).toBe(`${groupExecutor.container}.${task.container}`);
      const enriched = enrichFromState(meta, served);
      expect(enriched, task.id).toMatchObject({
        task_id: task.id,
        task_name: task.name,
        framework_name: 'marathon',
        executor_id: groupExecutor.id,
        executor_labels: { pod: 'cache' },
        task_labels: Object.fromEntries((task.labels ?? []).map((l) => [l.key, l.value])),
      });
    }
  });

  it('the task group executor itself gets framework and executor data but no task', () => {
    const meta = metadataFromPath(`${dirOf(groupExecutor)}/stdout`);
    const enriched = enrichFromState(meta, served)!;
    expect(enriched.framework_name).toBe('marathon');
    expect(enriched.executor_labels).toEqual({ pod: 'cache' });
    expect(enriched.task_id).toBeUndefined();
    expect(enriched.task_labels).toEqual({});
  });

  it('is undefined while the agent does not list the sandbox', () => {
    const meta = metadataFromPath(`${WORK}/slaves/${AGENT}/frameworks/${FRAMEWORK}/executors/other/runs/C9/stdout`);
    expect(enrichFromState(meta, served)).toBeUndefined();
    expect(enrichFromState(meta, {} as never)).toBeUndefined();
  });

  it('values of other types: numbers and booleans become text, anything else is left out, so sinks get strings', async () => {
    const dir = `${WORK}/slaves/${AGENT}/frameworks/${FRAMEWORK}/executors/odd/runs/C1`;
    const odd = {
      id: 42,
      frameworks: [
        'not a framework',
        {
          id: FRAMEWORK,
          name: 7,
          executors: [
            null,
            {
              id: 12345,
              name: { not: 'text' },
              directory: dir,
              labels: { not: 'a list' },
              tasks: [{ id: 12345, name: true, labels: [{ key: 1, value: 2 }, { value: 'no key' }, 'junk'], statuses: 5 }],
              queued_tasks: 'not a list',
              completed_tasks: {},
            },
          ],
        },
      ],
    };
    const agent = await startFakeAgent(odd);
    let state;
    try {
      state = await new AgentStateClient(agent.url, 2000, CAP).state();
    } finally {
      await agent.close();
    }
    const meta = metadataFromPath(`${dir}/stdout`);
    const enriched = enrichFromState(meta, state)!;
    expect(enriched).toMatchObject({ task_id: '12345', task_name: 'true', framework_name: '7', executor_labels: {}, task_labels: { 1: '2' } });
    expect(enriched.executor_name).toBeUndefined();
    for (const [key, value] of Object.entries(enriched)) {
      if (value !== undefined && typeof value !== 'object') expect(typeof value, key).toBe('string');
    }
    for (const notAState of [null, [], 'text', { frameworks: 'none' }]) expect(enrichFromState(meta, notAState as never)).toBeUndefined();
  });

  it('a sibling directory with the same prefix is not this sandbox', () => {
    const meta = metadataFromPath(`${dirOf(commandExecutor)}x/stdout`);
    expect(enrichFromState(meta, served)).toBeUndefined();
  });
});

describe('AgentStateClient against a real HTTP server', () => {
  let agent: FakeAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('fetches /state, with or without a trailing slash on the URL', async () => {
    agent = await startFakeAgent(STATE);
    expect(await new AgentStateClient(agent.url, 1000, CAP).state()).toEqual(STATE);
    expect(await new AgentStateClient(`${agent.url}/`, 1000, CAP).state()).toEqual(STATE);
    expect(agent.requests).toEqual(['/state', '/state']);
  });

  it('shares one request among callers within the cache time, then asks again', async () => {
    agent = await startFakeAgent(STATE);
    agent.delayMs = 50;
    const client = new AgentStateClient(agent.url, 1000, CAP, 300);
    const [a, b] = await Promise.all([client.state(), client.state()]);
    expect(a).toBe(b);
    expect(await client.state()).toBe(a);
    expect(agent.requests).toHaveLength(1);
    await sleep(350);
    await client.state();
    expect(agent.requests).toHaveLength(2);
  });

  it('a 500 rejects and is not cached', async () => {
    agent = await startFakeAgent(STATE);
    agent.mode = 'error';
    const client = new AgentStateClient(agent.url, 1000, CAP);
    await expect(client.state()).rejects.toThrow(/500/);
    agent.mode = 'ok';
    expect(await client.state()).toEqual(STATE);
    expect(agent.requests).toHaveLength(2);
  });

  it('an answer cut short or not JSON rejects at once, not at the timeout', async () => {
    agent = await startFakeAgent(STATE);
    for (const mode of ['cut', 'garbage'] as const) {
      agent.mode = mode;
      const started = Date.now();
      await expect(new AgentStateClient(agent.url, 5000, CAP).state(), mode).rejects.toThrow();
      expect(Date.now() - started, mode).toBeLessThan(1000);
    }
  });

  it('connection refused rejects at once', async () => {
    const url = await refusedUrl();
    const started = Date.now();
    await expect(new AgentStateClient(url, 1000, CAP).state()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('an agent slower than timeout_ms is given up on at the timeout', async () => {
    agent = await startFakeAgent(STATE);
    agent.delayMs = 2000;
    const started = Date.now();
    await expect(new AgentStateClient(agent.url, 150, CAP).state()).rejects.toThrow();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
  });

  it('a server that accepts and never answers is given up on at the timeout', async () => {
    const silent = await startSilentServer();
    try {
      const started = Date.now();
      await expect(new AgentStateClient(silent.url, 150, CAP).state()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(silent.connections()).toBe(1);
    } finally {
      await silent.close();
    }
  });

  it('a body over agent.max_response_bytes is refused at its announced length; one of exactly the cap is read', async () => {
    agent = await startFakeAgent(STATE);
    agent.padding = 1000;
    const length = JSON.stringify(STATE).length + agent.padding;
    expect(await new AgentStateClient(agent.url, 5000, length).state()).toEqual(STATE);
    const started = Date.now();
    const refused = new AgentStateClient(agent.url, 5000, length - 1).state();
    await expect(refused).rejects.toThrow(ResponseTooLarge);
    await expect(refused).rejects.toThrow(`${agent.url}/state answered more than ${length - 1} bytes`);
    // The default cap: a body one byte over it is refused as soon as its headers arrive.
    agent.padding = CAP + 1 - JSON.stringify(STATE).length;
    await expect(new AgentStateClient(agent.url, 5000, CAP).state()).rejects.toThrow(ResponseTooLarge);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('a body that never ends is dropped once it passes the cap, long before the timeout', async () => {
    agent = await startFakeAgent(STATE);
    agent.mode = 'endless';
    for (const cap of [1 << 20, CAP]) {
      const started = Date.now();
      await expect(new AgentStateClient(agent.url, 60_000, cap).state(), String(cap)).rejects.toThrow(ResponseTooLarge);
      expect(Date.now() - started, String(cap)).toBeLessThan(20_000);
    }
    expect(agent.requests).toEqual(['/state', '/state']);
  });

  it('a failure of an old request does not evict a newer cached answer', async () => {
    agent = await startFakeAgent(STATE);
    agent.delayMs = 2000;
    const client = new AgentStateClient(agent.url, 350, CAP, 200);
    const slow = client.state(); // given up at 350 ms
    await sleep(250);
    agent.delayMs = 0;
    const fresh = await client.state(); // the cache expired at 200 ms: a new request, answered at once
    await expect(slow).rejects.toThrow();
    // The slow request failed at 350 ms, while the fresh answer (~250 ms) is still cached until ~450 ms.
    expect(await client.state()).toBe(fresh);
    expect(agent.requests).toHaveLength(2);
  });
});

describe('enrichInBackground', () => {
  let agent: FakeAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });
  const config = (url: string) => ({ enrich: true, url, timeoutMs: 200, maxResponseBytes: CAP });

  it('hands over the enriched metadata once the agent lists the task', async () => {
    agent = await startFakeAgent(STATE);
    const { log } = captureLog();
    const meta = metadataFromPath(`${dirOf(commandExecutor)}/stdout`);
    const applied: StreamMetadata[] = [];
    const stop = enrichInBackground(meta, config(agent.url), log, (m) => applied.push(m));
    await waitFor(() => applied.length === 1, { what: 'enrichment' });
    stop();
    expect(applied[0].task_id).toBe(commandExecutor.tasks[0].id);
    await sleep(50);
    expect(agent.requests).toHaveLength(1);
  });

  it('retries while the agent does not list the sandbox yet', async () => {
    agent = await startFakeAgent(agentState(WORK, AGENT, []));
    const { log } = captureLog();
    const meta = metadataFromPath(`${dirOf(commandExecutor)}/stdout`);
    const applied: StreamMetadata[] = [];
    const stop = enrichInBackground(meta, config(agent.url), log, (m) => applied.push(m), new AgentStateClient(agent.url, 200, CAP, 0));
    await waitFor(() => agent!.requests.length >= 1, { what: 'first request' });
    agent.state = STATE;
    await waitFor(() => applied.length === 1, { timeoutMs: 3000, what: 'enrichment after the retry' });
    stop();
    expect(applied[0].task_name).toBe('web');
    expect(agent.requests.length).toBe(2);
  });

  it('an answer over the cap is logged as an error naming the URL and the cap, and not asked again', async () => {
    agent = await startFakeAgent(STATE);
    agent.mode = 'endless';
    const { log, entries } = captureLog();
    const applied: StreamMetadata[] = [];
    const cap = 1 << 20;
    const agentConfig = { ...config(agent.url), timeoutMs: 10_000, maxResponseBytes: cap };
    const stop = enrichInBackground(metadataFromPath(`${dirOf(commandExecutor)}/stdout`), agentConfig, log, (m) => applied.push(m));
    const error = await waitFor(() => entries().find((e) => e.level === 50), { what: 'the error', timeoutMs: 10_000 });
    expect(error).toMatchObject({ url: `${agent.url}/state`, maxBytes: cap });
    expect(String(error.msg)).toContain('agent.max_response_bytes');
    await sleep(1500); // past the first retry
    stop();
    expect(applied).toEqual([]);
    expect(agent.requests).toHaveLength(1);
  });

  it('an unreachable agent never applies anything and stop() ends the retries', async () => {
    const url = await refusedUrl();
    const { log } = captureLog();
    const applied: StreamMetadata[] = [];
    const stop = enrichInBackground(metadataFromPath(`${dirOf(commandExecutor)}/stdout`), config(url), log, (m) => applied.push(m));
    await sleep(200);
    stop();
    expect(applied).toEqual([]);
  });
});
