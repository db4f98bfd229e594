// The exec sink in daemon mode: each stream's own command gets every line, and each stream ends when its task closes
// the pipe, even when the task closes it before the daemon has taken the stream over (the daemon reopens the shim's
// stdin through /proc, and must see the end of an agent's pipe whenever it comes).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { readIfExists } from './helpers/exec.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type Exit } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterAll(killDaemons);

const STREAMS = 4;
// 40 kB: the pipe (64 KiB) takes it all, so the test's end closes it before the daemon has taken the stream over.
const LINES = 500;

it(`${STREAMS} streams with an exec sink each end, every line reaches its command, each shim exits 0`, async () => {
  const config = join(makeSandbox().dir, 'config.yaml');
  const command = ['/bin/sh', '-c', 'cat > "$MESOS_LOG_SANDBOX_DIRECTORY/exec.out"'];
  writeFileSync(config, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 3000, sinks: { each: { type: 'exec', command } } }));
  const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
  await daemon.start();
  const sandboxes = Array.from({ length: STREAMS }, () => makeSandbox());
  const inputs = sandboxes.map((_, k) => numberedLines(LINES, 80, `e${k}`));
  const exits = await Promise.all(
    sandboxes.map(async (sandbox, k) => {
      const helper = await spawnLogger({ log_filename: sandbox.stdout }, { env: daemon.shimEnv('daemon') });
      await helper.write(inputs[k]);
      await helper.end();
      let exit: Exit | undefined;
      void helper.exited.then((e) => (exit = e));
      await waitFor(() => exit, { timeoutMs: 20_000, what: `stream ${k}'s shim to exit after its end` });
      return exit!;
    }),
  );
  expect(exits.map((exit) => exit.code)).toEqual(sandboxes.map(() => 0));
  sandboxes.forEach((sandbox, k) => {
    expect(readFileSync(sandbox.stdout).equals(inputs[k]), `stream ${k}'s sandbox file`).toBe(true);
    // Each command ran in its own stream's sandbox and got exactly that stream's lines, in order.
    expect(readIfExists(join(sandbox.dir, 'exec.out')).equals(inputs[k]), `stream ${k}'s exec output`).toBe(true);
  });
});
