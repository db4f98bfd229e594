import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds the bundle once, so `npx vitest run` tests what the sources make.
    globalSetup: ['test/global-setup.ts'],
    // Kills helpers a test left running and removes temp dirs.
    setupFiles: ['test/helpers/setup.ts'],
    // Tests spawn the built helper and real daemons; two cores, so keep files from starving each other.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
