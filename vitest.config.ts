import { defineConfig } from 'vitest/config';

/**
 * Tests that run in-process, in seconds, as any user: no built helper, no daemon (journald, rsyslog), no process
 * under test (exec sinks, scripts, logrotate), no root. They use loopback sockets, pipes and temp dirs (mkfifo makes
 * a fixture). Every other file, new ones included, is e2e.
 */
const UNIT = [
  'test/config.test.ts',
  'test/cut.test.ts',
  'test/fluent-encoding.test.ts',
  'test/frame-ring.test.ts',
  'test/kafka-client.test.ts',
  'test/kafka-record.test.ts',
  'test/line-buffer.test.ts',
  'test/metadata.test.ts',
  'test/newline-count.test.ts',
  'test/otlp-encoding.test.ts',
  'test/pipeline.test.ts',
  'test/sink-base.test.ts',
  'test/syslog-acknowledged.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn the built helper and real daemons; two cores, so keep files from starving each other.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: UNIT,
          // Removes temp dirs.
          setupFiles: ['test/helpers/setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          // Builds the bundle once, so the tests spawn what the sources make.
          globalSetup: ['test/global-setup.ts'],
          // Removes temp dirs, after the second kills the helpers a test left running (after-hooks run as a stack).
          setupFiles: ['test/helpers/setup.ts', 'test/helpers/setup-processes.ts'],
        },
      },
    ],
  },
});
