import { createRequire } from 'node:module';

/**
 * Where one of our addons (native/*.c, built by `npm ci` into build/Release) lies from this file: beside the bundle
 * (a release, or a test run's bundle), else the repo's build/Release seen from dist/ or src/.
 */
export const addonCandidates = (name: string): string[] => [`./${name}.node`, `../build/Release/${name}.node`];

/**
 * Loads the N-API addon `name` (e.g. `newline_count`) from the first place it loads; undefined when none does.
 * T is what the caller expects it to export: unchecked here.
 */
export function loadNativeAddon<T>(name: string): T | undefined {
  const require = createRequire(import.meta.url);
  for (const candidate of addonCandidates(name)) {
    try {
      return require(candidate) as T;
    } catch {
      // Not there, or built for another Node ABI: try the next place.
    }
  }
  return undefined;
}
