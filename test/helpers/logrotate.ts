import { execFileSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { makeSandbox, type Sandbox } from './sandbox.js';

/**
 * Real logrotate as the reference: a fresh sandbox whose live file gets `generation(i)` appended before each of
 * `rotations` logrotate runs, on the conf the helper writes but with threshold 0 so that every run rotates; then
 * `generation(rotations)` as the new live file.
 */
export function logrotateReference(
  options: string | undefined,
  rotations: number,
  generation: (index: number) => Buffer,
): Sandbox {
  const sandbox = makeSandbox();
  const conf = `${sandbox.stdout}.logrotate.conf`;
  writeFileSync(conf, `"${sandbox.stdout}" {\n${options ?? ''}\nsize 0\n}`, { mode: 0o644 });
  for (let i = 0; i < rotations; i++) {
    appendFileSync(sandbox.stdout, generation(i));
    execFileSync('logrotate', ['--state', `${sandbox.stdout}.logrotate.state`, conf]);
  }
  appendFileSync(sandbox.stdout, generation(rotations));
  return sandbox;
}
