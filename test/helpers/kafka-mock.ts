// librdkafka's mock cluster, started by Debian's kcat: a consumer with test.mock.num.brokers keeps it alive, and
// librdkafka logs the address it listens on.
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './wait.js';

export interface KafkaMock {
  readonly bootstrap: string;
  stop(): Promise<void>;
}

export async function startKafkaMock(): Promise<KafkaMock> {
  const child: ChildProcess = spawn('kcat', ['-b', '127.0.0.1:1', '-C', '-q', '-X', 'test.mock.num.brokers=1', '-t', 'keepalive'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const bootstrap = await waitFor(() => /replaced with (\S+)/.exec(stderr)?.[1] ?? false, { what: `kcat's mock cluster address (stderr: ${stderr})` });
  return {
    bootstrap,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
