import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startStalledPeer } from './stalled-peer.js';

/**
 * A stand-in for the Mesos agent's HTTP endpoint on 127.0.0.1 (ephemeral port). It serves `GET /state` with the
 * JSON it is given, or misbehaves as told: answer 500, answer late, accept and never answer, or never stop answering.
 */
export interface FakeAgent {
  /** `http://127.0.0.1:<port>`, as the `agent.url` config key takes it. */
  readonly url: string;
  /** Paths of the requests received, in order. */
  readonly requests: string[];
  state: unknown;
  /**
   * ok; error: answer 500; hang: never answer; cut: send half the body, then reset; garbage: 200 with non-JSON;
   * endless: 200 with a JSON body of no announced length that never ends (as fast as the client reads).
   */
  mode: 'ok' | 'error' | 'hang' | 'cut' | 'garbage' | 'endless';
  /** Answer `ok` requests this much later. */
  delayMs: number;
  /** Spaces after the JSON in `ok` answers: a valid body of any size (its Content-Length says so). */
  padding: number;
  /** Requests being answered now, and the most at once so far. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

export async function startFakeAgent(state: unknown): Promise<FakeAgent> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const agent: FakeAgent = {
    url: '',
    requests: [],
    state,
    mode: 'ok',
    delayMs: 0,
    padding: 0,
    inFlight: 0,
    maxInFlight: 0,
    close: () => closeServer(server, sockets, timers),
  };
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    agent.requests.push(request.url ?? '');
    agent.inFlight++;
    agent.maxInFlight = Math.max(agent.maxInFlight, agent.inFlight);
    response.once('close', () => agent.inFlight--);
    if (agent.mode === 'hang') return;
    if (agent.mode === 'error') {
      response.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
      return;
    }
    if (request.url !== '/state') {
      response.writeHead(404).end();
      return;
    }
    if (agent.mode === 'endless') return answerForever(response);
    const body = JSON.stringify(agent.state) + ' '.repeat(agent.padding);
    if (agent.mode === 'garbage') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html>Service Unavailable</html>');
      return;
    }
    if (agent.mode === 'cut') {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      response.write(body.slice(0, body.length >> 1), () => response.socket?.destroy());
      return;
    }
    const answer = (): void => {
      const length = String(Buffer.byteLength(body));
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': length }).end(body);
    };
    if (agent.delayMs === 0) return answer();
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, agent.delayMs);
    timers.add(timer);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (agent as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return agent;
}

/** `{"frameworks": [` and then spaces, chunked, until the client goes away. */
function answerForever(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.write('{"frameworks": [');
  const spaces = Buffer.alloc(64 * 1024, ' ');
  const more = (): void => {
    while (!response.destroyed && response.write(spaces));
    if (!response.destroyed) response.once('drain', more);
  };
  more();
}

/** A TCP server that accepts connections and never sends a byte: an agent that hangs before HTTP even starts. */
export async function startSilentServer(): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  const peer = await startStalledPeer();
  return { url: `http://127.0.0.1:${peer.port}`, connections: peer.connections, close: peer.close };
}

/** A loopback URL whose port refuses connections: bound once to get a free port, then released. */
export async function refusedUrl(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function closeServer(server: { close(cb: () => void): unknown }, sockets: Set<Socket>, timers: Set<NodeJS.Timeout>) {
  for (const timer of timers) clearTimeout(timer);
  for (const socket of sockets) socket.destroy();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

// ---- A realistic agent /state document ----

export interface Label {
  key: string;
  value: string;
}

export interface TaskSpec {
  id: string;
  name: string;
  labels?: Label[];
  /** For a task of a task group: its nested container id. */
  container?: string;
  state?: string;
}

export interface ExecutorSpec {
  id: string;
  name: string;
  /** The executor's container id: the `runs/<id>` directory. */
  container: string;
  labels?: Label[];
  type?: 'COMMAND' | 'DEFAULT' | 'CUSTOM';
  tasks: TaskSpec[];
}

export interface FrameworkSpec {
  id: string;
  name: string;
  executors: ExecutorSpec[];
}

/** The sandbox directory the agent gives an executor run, as `directory` in /state. */
export const executorDirectory = (workDir: string, agentId: string, frameworkId: string, executor: ExecutorSpec): string =>
  `${workDir}/slaves/${agentId}/frameworks/${frameworkId}/executors/${executor.id}/runs/${executor.container}`;

/**
 * `GET /state` as a Mesos 1.x agent writes it: the fields enrichment reads (frameworks[].executors[] with id, name,
 * container, directory, labels as [{key, value}], tasks[] with statuses[].container_status.container_id) amid the
 * fields it must ignore.
 */
export function agentState(workDir: string, agentId: string, frameworks: FrameworkSpec[]): unknown {
  const now = 1_700_000_000.123;
  return {
    version: '1.11.0',
    git_sha: 'e8a3ca1c13b9e8a4d3c2d0e5a6f0c2b5d2f2a1b0',
    build_date: '2020-11-19 22:07:51',
    build_time: 1605823671,
    build_user: 'root',
    start_time: now - 3600,
    id: agentId,
    pid: 'slave(1)@10.0.0.7:5051',
    hostname: 'agent-7.example.com',
    capabilities: ['MULTI_ROLE', 'HIERARCHICAL_ROLE', 'RESERVATION_REFINEMENT', 'RESOURCE_PROVIDER'],
    resources: { disk: 100000, mem: 15000, gpus: 0, cpus: 8, ports: '[31000-32000]' },
    attributes: {},
    master_hostname: 'master-1.example.com',
    log_dir: '/var/log/mesos',
    flags: { work_dir: workDir, port: '5051', container_logger: 'org_apache_mesos_LogrotateContainerLogger' },
    frameworks: frameworks.map((framework) => ({
      id: framework.id,
      name: framework.name,
      user: 'root',
      failover_timeout: 604800,
      checkpoint: true,
      hostname: 'scheduler-1.example.com',
      role: '*',
      executors: framework.executors.map((executor) => ({
        id: executor.id,
        name: executor.name,
        source: executor.id,
        container: executor.container,
        directory: executorDirectory(workDir, agentId, framework.id, executor),
        resources: { cpus: 0.1, mem: 32, disk: 0 },
        role: '*',
        type: executor.type ?? 'COMMAND',
        ...(executor.labels === undefined ? {} : { labels: executor.labels }),
        tasks: executor.tasks.map((task) => ({
          id: task.id,
          name: task.name,
          framework_id: framework.id,
          executor_id: executor.type === 'COMMAND' || executor.type === undefined ? '' : executor.id,
          slave_id: agentId,
          state: task.state ?? 'TASK_RUNNING',
          resources: { cpus: 1, mem: 128, disk: 0, gpus: 0 },
          role: '*',
          ...(task.labels === undefined ? {} : { labels: task.labels }),
          statuses: [
            {
              state: task.state ?? 'TASK_RUNNING',
              timestamp: now,
              container_status: {
                container_id:
                  task.container === undefined
                    ? { value: executor.container }
                    : { value: task.container, parent: { value: executor.container } },
                network_infos: [{ ip_addresses: [{ protocol: 'IPv4', ip_address: '10.0.0.7' }] }],
              },
            },
          ],
        })),
        queued_tasks: [],
        completed_tasks: [],
      })),
      completed_executors: [],
    })),
    completed_frameworks: [],
  };
}
