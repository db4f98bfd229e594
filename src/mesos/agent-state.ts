import type { StreamMetadata } from './metadata.js';

/** The config's `agent:` section: whether and how a stream asks the agent's /state. */
export interface AgentConfig {
  /** Ask the agent's /state for task id, names and labels. */
  enrich: boolean;
  url: string;
  timeoutMs: number;
  /** The most of /state's body read; a larger answer is given up. */
  maxResponseBytes: number;
}

/** The parts of the agent's `GET /state` that name a stream's writer. */
interface Label {
  key: string;
  value?: string;
}
interface TaskState {
  id: string;
  name?: string;
  labels?: Label[];
  statuses?: { container_status?: { container_id?: { value?: string } } }[];
}
interface ExecutorState {
  id: string;
  name?: string;
  directory?: string;
  labels?: Label[];
  tasks?: TaskState[];
  queued_tasks?: TaskState[];
  completed_tasks?: TaskState[];
}
interface AgentState {
  id?: string;
  frameworks?: { id: string; name?: string; executors?: ExecutorState[] }[];
}

/** The agent's answer is larger than `agent.max_response_bytes`: asking again would read as much again. */
export class ResponseTooLarge extends Error {
  constructor(
    readonly url: string,
    readonly maxBytes: number,
  ) {
    super(`${url} answered more than ${maxBytes} bytes (agent.max_response_bytes); gave up reading it`);
  }
}

/**
 * Fetches the agent's /state with a short timeout and at most `maxBytes` of body, sharing one response among callers
 * for `cacheMs` (a per-agent daemon asks once for all its streams).
 */
export class AgentStateClient {
  private cached: { at: number; state: Promise<AgentState> } | undefined;

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
    private readonly cacheMs = 2000,
  ) {}

  state(): Promise<AgentState> {
    const now = Date.now();
    if (this.cached === undefined || now - this.cached.at > this.cacheMs) {
      const url = new URL('state', this.url.endsWith('/') ? this.url : `${this.url}/`);
      const state = getJson(url, this.timeoutMs, this.maxBytes) as Promise<AgentState>;
      this.cached = { at: now, state };
      state.catch(() => {
        // Only this request's entry: a newer one may have replaced it while this one was timing out.
        if (this.cached?.state === state) this.cached = undefined;
      });
    }
    return this.cached.state;
  }
}

/**
 * GET and parse JSON, all within `timeoutMs`. The body is read as it arrives and the request dropped once it passes
 * `maxBytes` (or announces more), so an agent, or whatever answers at that URL, cannot fill the helper's memory.
 * node:http rather than fetch: the first fetch() loads undici synchronously (~100 ms of blocked event loop), which
 * would hold up the sandbox path at the task's start. Loaded on first use, so a sandbox-only helper never pays for it.
 */
async function getJson(url: URL, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const { get } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      if (response.statusCode === undefined || response.statusCode < 200 || response.statusCode > 299) {
        fail(new Error(`agent answered ${response.statusCode}`));
        return;
      }
      const tooLarge = (): void => fail(new ResponseTooLarge(url.href, maxBytes));
      if (Number(response.headers['content-length'] ?? 0) > maxBytes) return tooLarge();
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBytes) tooLarge();
        else chunks.push(chunk);
      });
      response.on('error', fail);
      response.on('end', () => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(new Error(`agent answered invalid JSON: ${(err as Error).message}`));
        }
      });
    });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      request.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`agent did not answer within ${timeoutMs} ms`)), timeoutMs);
    request.on('error', fail);
  });
}

// The agent's JSON is read field by field: a value of another type (a number for an id, an object for a list) is
// taken as text where it is a number or boolean, else left out, so every sink gets strings.
const text = (value: unknown): string | undefined => {
  if (typeof value === 'string') return value;
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
};
const objects = <T>(value: T[] | undefined): T[] =>
  Array.isArray(value) ? value.filter((item) => typeof item === 'object' && item !== null && !Array.isArray(item)) : [];

const labelMap = (labels: Label[] | undefined): Record<string, string> =>
  Object.fromEntries(
    objects(labels).flatMap((label) => {
      const key = text(label.key);
      return key === undefined ? [] : [[key, text(label.value) ?? '']];
    }),
  );

/** Adds task id, names and labels from /state. Undefined when the agent does not (yet) list this sandbox. */
export function enrichFromState(meta: StreamMetadata, state: AgentState): StreamMetadata | undefined {
  for (const framework of objects(state?.frameworks)) {
    for (const executor of objects(framework.executors)) {
      const dir = text(executor.directory);
      if (dir === undefined || (meta.sandbox !== dir && !meta.sandbox.startsWith(`${dir}/containers/`))) continue;
      const tasks = [executor.tasks, executor.queued_tasks, executor.completed_tasks].flatMap(objects);
      const child = meta.container_id?.split('.').slice(1).pop();
      const executorId = text(executor.id);
      const runsChild = (t: TaskState): boolean =>
        objects(t.statuses).some((s) => text(s.container_status?.container_id?.value) === child);
      const task =
        (child && tasks.find(runsChild)) ||
        (executorId !== undefined && tasks.find((t) => text(t.id) === executorId)) ||
        (tasks.length === 1 ? tasks[0] : undefined);
      const taskId = task ? text(task.id) : undefined;
      return {
        ...meta,
        agent_id: meta.agent_id ?? text(state.id),
        framework_id: meta.framework_id ?? text(framework.id),
        framework_name: text(framework.name),
        executor_id: meta.executor_id ?? executorId,
        executor_name: text(executor.name),
        executor_labels: labelMap(executor.labels),
        ...(task && taskId !== undefined
          ? { task_id: taskId, task_name: text(task.name), task_labels: labelMap(task.labels) }
          : {}),
      };
    }
  }
  return undefined;
}
