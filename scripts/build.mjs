// Bundles the helper into one file that needs only `node` on the agent.
// `--release` also lays out dist/release/: the bundle, the shim (the drop-in mesos-logrotate-logger) and the operator
// launcher, ready to copy into launcher_dir, and the daemon's systemd unit.
import { build } from 'esbuild';
import { copyFileSync, chmodSync, cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';

const outfile = 'dist/mesos-log-splitter.mjs';
await build({
  entryPoints: ['src/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minifyWhitespace: true,
  legalComments: 'none',
  // Some dependencies are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
  // journald's native addon: a .node file cannot be bundled. Loaded at run time from node_modules beside or above
  // the bundle; without it the journald sink falls back to the stream socket.
  external: ['unix-dgram'],
});

if (process.argv.includes('--release')) {
  mkdirSync('dist/release', { recursive: true });
  copyFileSync(outfile, 'dist/release/mesos-log-splitter.mjs');
  const shim = 'build/Release/mesos-logrotate-logger';
  if (!existsSync(shim)) throw new Error(`${shim} is not built (npm ci builds native/shim.c with node-gyp)`);
  for (const [name, source] of [['mesos-logrotate-logger', shim], ['mesos-log-splitter', 'bin/mesos-log-splitter']]) {
    copyFileSync(source, `dist/release/${name}`);
    chmodSync(`dist/release/${name}`, 0o755);
  }
  copyFileSync('config/mesos-log-splitter.service', 'dist/release/mesos-log-splitter.service');
  console.log(`dist/release/: mesos-logrotate-logger (the shim), mesos-log-splitter, mesos-log-splitter.mjs, mesos-log-splitter.service`);
  shipUnixDgram('dist/release/node_modules');
  shipAddon('dist/release', 'newline_count', 'native/newline-count.c', 'release sinks will count dropped lines in JavaScript (slower)');
  shipAddon('dist/release', 'socket_queue', 'native/socket-queue.c', 'release syslog tcp/tls sinks will count a line sent when the kernel took it, not when the receiver acknowledged it');
}

/** One of our N-API addons, beside the bundle where it looks first; `without` says what the helper does without it. */
function shipAddon(dir, name, source, without) {
  const addon = `build/Release/${name}.node`;
  rmSync(`${dir}/${name}.node`, { force: true });
  if (!existsSync(addon)) {
    console.log(`${source} is not built: ${without}`);
    return;
  }
  copyFileSync(addon, `${dir}/${name}.node`);
  console.log(`dist/release/${name}.node (N-API: any Node 20 or newer on ${process.platform}-${process.arch})`);
}

/**
 * Puts the built journald addon and what it loads at run time beside the release bundle, where Node finds it.
 * The .node file only loads in the Node major (ABI) and libc it was built for.
 */
function shipUnixDgram(dir) {
  rmSync(dir, { recursive: true, force: true });
  if (!existsSync('node_modules/unix-dgram/build/Release/unix_dgram.node')) {
    console.log('unix-dgram is not built: the release journald sink will use the stream socket (no custom fields)');
    return;
  }
  for (const file of ['package.json', 'LICENSE', 'lib', 'build/Release/unix_dgram.node']) {
    cpSync(`node_modules/unix-dgram/${file}`, `${dir}/unix-dgram/${file}`, { recursive: true });
  }
  for (const pkg of ['bindings', 'file-uri-to-path']) cpSync(`node_modules/${pkg}`, `${dir}/${pkg}`, { recursive: true });
  console.log(`dist/release/node_modules/: unix-dgram for Node ${process.versions.node} (ABI ${process.versions.modules}, ${process.platform}-${process.arch})`);
}
