import type { Logger } from '../diagnostics.js';
import { AgentStateClient, enrichFromState, ResponseTooLarge, type AgentConfig } from '../mesos/agent-state.js';
import type { StreamMetadata } from '../mesos/metadata.js';

/**
 * When a stream still waiting for its task is asked about again, counted from its start: the agent often lists a
 * task only after its logger started. A stream not found after the last gives up (path metadata only).
 */
const RETRY_MS = [0, 1000, 2000, 4000, 8000, 15_000, 30_000, 60_000];
/** A retry due within this much after a request counts that request as its attempt: schedules fall into step. */
const COALESCE_MS = 500;
/** After a failed request (agent down, timeout, bad answer), the next waits this long, doubling. */
const ERROR_BACKOFF_FIRST_MS = 1000;
const ERROR_BACKOFF_MAX_MS = 30_000;

interface Waiting {
  meta: StreamMetadata;
  /** Answers it was looked up in. */
  attempts: number;
  /** When it wants the next request (ms since the epoch). */
  dueAt: number;
}

/**
 * The daemon's one client of the agent's `GET /state`, for all its streams (workers never ask the agent): at most
 * one request in flight, made when a stream whose container no answer named yet appears (or a waiting one is due
 * again), and its answer serves every stream waiting then. Failed requests back off.
 */
export class SharedEnrichment {
  private agent: AgentConfig | undefined;
  private settings = '';
  private readonly waiting = new Map<number, Waiting>();
  /**
   * Sandboxes (containers) whose task was found, with the streams of each: a container's second stream needs no
   * request. Not the last whole answer: an executor that gained a task since would match its only older task.
   */
  private readonly known = new Map<string, { meta: StreamMetadata; streams: Set<number> }>();
  private readonly sandboxOf = new Map<number, string>();
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  private notBefore = 0;
  private errorBackoffMs = ERROR_BACKOFF_FIRST_MS;

  constructor(
    private readonly log: Logger,
    /** A stream's metadata grew (task id, names, labels). */
    private readonly found: (id: number, meta: StreamMetadata) => void,
  ) {}

  /** Enriches while `wanted` (some sink wants lines and `agent.enrich` is on), with these agent settings. */
  configure(agent: AgentConfig, wanted: boolean): void {
    const settings = wanted && agent.enrich ? JSON.stringify(agent) : '';
    if (settings === this.settings) return;
    this.settings = settings;
    this.known.clear();
    this.notBefore = 0;
    this.errorBackoffMs = ERROR_BACKOFF_FIRST_MS;
    this.agent = settings === '' ? undefined : agent;
    for (const waiting of this.waiting.values()) {
      waiting.attempts = 0;
      waiting.dueAt = Date.now();
    }
    this.schedule();
  }

  add(id: number, meta: StreamMetadata): void {
    this.sandboxOf.set(id, meta.sandbox);
    const known = this.known.get(meta.sandbox);
    if (known !== undefined && this.agent !== undefined) {
      known.streams.add(id);
      return this.found(id, { ...known.meta, stream: meta.stream, ...(meta.user === undefined ? {} : { user: meta.user }) });
    }
    this.waiting.set(id, { meta, attempts: 0, dueAt: Date.now() });
    this.schedule();
  }

  remove(id: number): void {
    this.waiting.delete(id);
    const sandbox = this.sandboxOf.get(id);
    this.sandboxOf.delete(id);
    const known = sandbox === undefined ? undefined : this.known.get(sandbox);
    if (known === undefined) return;
    known.streams.delete(id);
    if (known.streams.size === 0) this.known.delete(sandbox!);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.agent === undefined || this.inFlight || this.waiting.size === 0) return;
    const dueAt = Math.max(this.notBefore, Math.min(...[...this.waiting.values()].map((waiting) => waiting.dueAt)));
    this.timer = setTimeout(() => void this.request(), Math.max(0, dueAt - Date.now()));
    this.timer.unref();
  }

  /** Asking again would download as much again: streams forward with path metadata until the settings change. */
  private giveUp({ url, maxBytes }: ResponseTooLarge): void {
    this.inFlight = false;
    this.agent = undefined;
    this.waiting.clear();
    const message = "the agent's /state is over agent.max_response_bytes; not asking again";
    this.log.error({ url, maxBytes }, `${message}, forwarding with path metadata`);
  }

  private async request(): Promise<void> {
    const agent = this.agent;
    if (agent === undefined) return;
    this.inFlight = true;
    const started = Date.now();
    let state: unknown;
    let error: string | undefined;
    try {
      // A client per request: its answer cache would hand a stream that came since an answer that cannot name it.
      state = await new AgentStateClient(agent.url, agent.timeoutMs, agent.maxResponseBytes).state();
    } catch (err) {
      error = (err as Error).message;
      if (err instanceof ResponseTooLarge && agent === this.agent) return this.giveUp(err);
    }
    this.inFlight = false;
    // The settings changed meanwhile: that answer is from the old URL.
    if (agent !== this.agent) return this.schedule();
    if (error === undefined) {
      this.notBefore = 0;
      this.errorBackoffMs = ERROR_BACKOFF_FIRST_MS;
    } else {
      this.notBefore = Date.now() + this.errorBackoffMs;
      this.errorBackoffMs = Math.min(this.errorBackoffMs * 2, ERROR_BACKOFF_MAX_MS);
    }
    for (const [id, waiting] of this.waiting) {
      if (state !== undefined && this.apply(id, waiting, state)) continue;
      // A stream that came in while the request was out is still due: the answer may predate its container. A
      // retry due soon counts this answer, so streams that started apart share their later requests.
      if (waiting.dueAt > started + (waiting.attempts === 0 ? 0 : COALESCE_MS)) continue;
      waiting.attempts++;
      if (waiting.attempts < RETRY_MS.length) {
        waiting.dueAt = started + RETRY_MS[waiting.attempts];
      } else {
        this.waiting.delete(id);
        const why = error ?? 'the agent does not list this sandbox';
        this.log.info({ sandbox: waiting.meta.sandbox, err: why }, 'no task metadata from the agent; forwarding with path metadata');
      }
    }
    this.schedule();
  }

  /** True when the stream is done waiting: its task was found. */
  private apply(id: number, waiting: Waiting, state: unknown): boolean {
    const enriched = enrichFromState(waiting.meta, state as Parameters<typeof enrichFromState>[1]);
    if (enriched === undefined) return false;
    this.found(id, enriched);
    if (enriched.task_id === undefined) return false;
    this.waiting.delete(id);
    const known = this.known.get(waiting.meta.sandbox);
    if (known === undefined) this.known.set(waiting.meta.sandbox, { meta: enriched, streams: new Set([id]) });
    else known.streams.add(id);
    return true;
  }
}
