// Bundles the helper into one file that needs only `node` on the agent.
// `--release` also lays out dist/release/: the bundle plus both launchers, ready to copy into launcher_dir.
import { build } from 'esbuild';
import { copyFileSync, chmodSync, mkdirSync } from 'node:fs';

const outfile = 'dist/mesos-log-splitter.mjs';
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile,
  minifyWhitespace: true,
  legalComments: 'none',
  // Some dependencies are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

if (process.argv.includes('--release')) {
  mkdirSync('dist/release', { recursive: true });
  copyFileSync(outfile, 'dist/release/mesos-log-splitter.mjs');
  for (const launcher of ['mesos-logrotate-logger', 'mesos-log-splitter']) {
    copyFileSync(`bin/${launcher}`, `dist/release/${launcher}`);
    chmodSync(`dist/release/${launcher}`, 0o755);
  }
  console.log('dist/release/: mesos-logrotate-logger, mesos-log-splitter, mesos-log-splitter.mjs');
}
