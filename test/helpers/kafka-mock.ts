// librdkafka's mock cluster, started by Debian's kcat: a consumer with test.mock.num.brokers keeps it alive, and
// librdkafka logs the addresses its brokers listen on. Records are read back with kcat too (-J: one JSON object per
// record), so neither side of the check is our code.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export interface MockRecord {
  topic: string;
  partition: number;
  offset: number;
  /** CreateTime, ms. */
  ts: number;
  key: string | null;
  payload: string | null;
}

export interface KafkaMock {
  /** Every broker, host:port. */
  readonly brokers: string[];
  /** Every record of `topic`, read with kcat (-C -e -J) from the start of each partition to its end. */
  consume(topic: string): Promise<MockRecord[]>;
  /** Produces one record keyed `key` to a new `topic` with kcat's murmur2_random partitioner (the Java client's); its partition. */
  partitionOf(topic: string, key: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startKafkaMock(brokers = 1): Promise<KafkaMock> {
  const child: ChildProcess = spawn('kcat', ['-b', '127.0.0.1:1', '-C', '-q', '-X', `test.mock.num.brokers=${brokers}`, '-t', 'keepalive'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const list = await waitFor(() => /replaced with (\S+)/.exec(stderr)?.[1] ?? false, { what: `kcat's mock cluster address (stderr: ${stderr})` });
  const consume = async (topic: string): Promise<MockRecord[]> => {
    const { stdout } = await run('kcat', ['-b', list, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], { maxBuffer: 1 << 28, timeout: 60_000 });
    return stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as MockRecord);
  };
  return {
    brokers: list.split(','),
    consume,
    async partitionOf(topic, key) {
      await new Promise<void>((resolve, reject) => {
        const producer = execFile('kcat', ['-b', list, '-P', '-t', topic, '-K', ':', '-X', 'partitioner=murmur2_random'], (err) => (err ? reject(err) : resolve()));
        producer.stdin!.end(`${key}:probe\n`);
      });
      const [record] = await consume(topic);
      return record.partition;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
