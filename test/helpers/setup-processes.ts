import { afterAll } from 'vitest';
import { killStrays } from './spawn.js';

// Per file, not per test: concurrent tests share the file's processes. Registered after setup.ts's hook, so it runs
// before it (vitest runs after-hooks as a stack): processes go before their temp dirs.
afterAll(() => killStrays());
