// The `daemon:` config section: its keys, their validation, and that the standalone helper's config takes it.
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { describeConfig, loadConfigFile, parseConfig, type SplitterConfig } from '../src/config/config.js';
import { ConfigError } from '../src/config-reader.js';
import { ROOT } from './helpers/spawn.js';

const parse = (yaml: string): SplitterConfig => parseConfig(parseYaml(yaml), 'test.yaml');

function errorOf(yaml: string): string {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`no error for:\n${yaml}`);
}

describe('daemon: section', () => {
  it('defaults: no metrics endpoint, workers get 1 s to report', () => {
    expect(parse('').daemon).toEqual({ metricsListen: undefined, statusTimeoutMs: 1000 });
    expect(parse('daemon:').daemon).toEqual({ metricsListen: undefined, statusTimeoutMs: 1000 });
  });

  it('reads host:port, [v6]:port and a host name', () => {
    expect(parse('daemon: {metrics_listen: "127.0.0.1:9560", status_timeout_ms: 250}').daemon).toEqual({
      metricsListen: { host: '127.0.0.1', port: 9560 },
      statusTimeoutMs: 250,
    });
    expect(parse('daemon: {metrics_listen: "[::1]:9560"}').daemon.metricsListen).toEqual({ host: '::1', port: 9560 });
    expect(parse('daemon: {metrics_listen: "localhost:80"}').daemon.metricsListen).toEqual({ host: 'localhost', port: 80 });
    expect(parse('daemon: {metrics_listen: "0.0.0.0:9560"}').daemon.metricsListen).toEqual({ host: '0.0.0.0', port: 9560 });
  });

  it.each([
    ['9560', 'daemon: {metrics_listen: 9560}'],
    [':9560', 'daemon: {metrics_listen: ":9560"}'],
    ['port 0', 'daemon: {metrics_listen: "127.0.0.1:0"}'],
    ['port 65536', 'daemon: {metrics_listen: "127.0.0.1:65536"}'],
    ['bare IPv6', 'daemon: {metrics_listen: "::1:9560"}'],
    ['not IPv6 in brackets', 'daemon: {metrics_listen: "[nope]:9560"}'],
    ['a URL', 'daemon: {metrics_listen: "http://127.0.0.1:9560"}'],
  ])('metrics_listen %s is an error naming the key', (_, yaml) => {
    expect(errorOf(yaml)).toMatch(/^daemon\.metrics_listen: .* (must be host:port|holds an invalid IPv6)/);
  });

  it('status_timeout_ms is a whole number of ms from 10 to 60000', () => {
    expect(errorOf('daemon: {status_timeout_ms: 5}')).toBe('daemon.status_timeout_ms: 5 must be a whole number from 10 to 60000');
    expect(errorOf('daemon: {status_timeout_ms: 1.5}')).toMatch(/^daemon\.status_timeout_ms: 1\.5 must be/);
  });

  it('an unknown key is an error naming it; the section must be a map', () => {
    expect(errorOf('daemon: {metrics_port: 9560}')).toBe('daemon.metrics_port: 9560 is not a known key');
    expect(errorOf('daemon: [1]')).toBe('daemon: [1] must be a map');
  });

  it('check-config prints it, and what it prints parses back', () => {
    const config = parse('daemon: {metrics_listen: "[::1]:9560", status_timeout_ms: 300}');
    const { source: _source, ...printed } = describeConfig(config) as Record<string, unknown>;
    expect(printed.daemon).toEqual({ metrics_listen: '[::1]:9560', status_timeout_ms: 300 });
    expect(parseConfig(printed, 'x').daemon).toEqual(config.daemon);
    expect((describeConfig(parse('')) as Record<string, unknown>).daemon).toEqual({ status_timeout_ms: 1000 });
  });

  it('config/daemon.yaml, the commented example, is valid', () => {
    expect(loadConfigFile(join(ROOT, 'config', 'daemon.yaml'), false).daemon).toEqual({
      metricsListen: { host: '127.0.0.1', port: 9560 },
      statusTimeoutMs: 1000,
    });
  });
});
