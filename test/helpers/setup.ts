import { afterAll } from 'vitest';
import { removeTempDirs } from './sandbox.js';
import { killStrays } from './spawn.js';

// Registered before any test file's own hooks, so these run after them (vitest runs after-hooks as a stack).
// Per file, not per test: concurrent tests share the file's processes.
afterAll(() => {
  killStrays();
  removeTempDirs();
});
