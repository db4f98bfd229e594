import { afterAll } from 'vitest';
import { removeTempDirs } from './sandbox.js';

// Registered before any test file's own hooks, so this runs after them (vitest runs after-hooks as a stack).
// Per file, not per test: concurrent tests share the file's temp dirs.
afterAll(() => removeTempDirs());
