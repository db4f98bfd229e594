import { spawnSync } from 'node:child_process';
import { isAbsolute } from 'node:path';
import yargs from 'yargs';
import { formatBytes, parseBytes } from '../mesos/bytes.js';

/** The flags of Mesos's mesos-logrotate-logger, same names, defaults and checks. */
export interface LoggerFlags {
  logFilename: string;
  /** Byte for byte as given: the conf and scripts keep bytes that are not UTF-8. */
  logrotateOptions: Buffer | undefined;
  logrotatePath: string;
  maxSize: number;
  user: string | undefined;
}

export type FlagsResult =
  | { kind: 'help'; usage: string }
  | { kind: 'error'; message: string; usage: string }
  | { kind: 'ok'; flags: LoggerFlags };

export class FlagError extends Error {}

const OPTIONS = {
  help: { type: 'boolean', default: false, describe: 'Prints this help message' },
  log_filename: {
    type: 'string',
    describe:
      'Absolute path to the leading log file. The helper also writes "<log_filename>.logrotate.conf"\n' +
      'and logrotate keeps "<log_filename>.logrotate.state".',
  },
  logrotate_options: {
    type: 'string',
    describe: 'Additional config options to pass into logrotate for this stream (newline separated).',
  },
  logrotate_path: {
    type: 'string',
    default: 'logrotate',
    describe: 'logrotate binary used for directives this helper does not handle natively.',
  },
  max_size: {
    type: 'string',
    default: '10MB',
    describe: 'Maximum size of a single log file, e.g. 10MB. At least one memory page.',
  },
  user: { type: 'string', describe: 'Run as this user; the sandbox files are owned by it.' },
} as const;

function parser() {
  return yargs()
    .scriptName('mesos-logrotate-logger')
    .usage('Usage: mesos-logrotate-logger [options]')
    .parserConfiguration({
      'camel-case-expansion': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'short-option-groups': false,
      'greedy-arrays': false,
      'strip-dashed': true,
      'unknown-options-as-args': false,
      'halt-at-non-option': false,
    })
    // Built-in help and version go first: defining `help` ourselves keeps the Mesos `--help=false` form working.
    .help(false)
    .version(false)
    .options(OPTIONS)
    .strict()
    .exitProcess(false)
    .wrap(null)
    .fail((message, error) => {
      throw new FlagError(error?.message ?? message);
    });
}

const BOOLEANS: Record<string, string> = { true: 'true', '1': 'true', false: 'false', '0': 'false' };

/**
 * stout's rules, which yargs alone does not keep: each argument is `--name=value` (a boolean may be bare `--name` or
 * `--no-name`, and takes true/false/1/0), names are known and given once. Returns argv with booleans spelled out.
 */
function checkShape(argv: string[]): string[] {
  const seen = new Map<string, string>();
  return argv.map((arg) => {
    if (!arg.startsWith('--') || arg === '--') return arg; // yargs reports stray arguments
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    if (value === undefined && name.startsWith('no-') && name.slice(3) in OPTIONS) name = name.slice(3);
    if (!(name in OPTIONS)) throw new FlagError(`Failed to load unknown flag '${name}' via '${arg}'`);
    if (seen.has(name)) {
      throw new FlagError(`Duplicate flag '${name}' on command line: '${seen.get(name)}' and '${arg}'`);
    }
    seen.set(name, arg);
    if (OPTIONS[name as keyof typeof OPTIONS].type === 'boolean') {
      if (value === undefined) return arg;
      const bool = BOOLEANS[value];
      if (bool === undefined) {
        throw new FlagError(`Failed to load flag '${name}' with value '${value}': expected true or false`);
      }
      return `--${name}=${bool}`;
    }
    if (value === undefined) throw new FlagError(`Failed to load non-boolean flag '${name}' via '${arg}': no value`);
    return arg;
  });
}

/**
 * Parse and validate argv exactly as the agent sends it. `pageSize` is the minimum for --max_size. `rawArgv` is argv
 * as bytes (see raw-argv.ts), for the flags whose value is kept byte for byte. `checkLogrotatePath` throws a
 * FlagError for a --logrotate_path that does not run.
 */
export function parseLoggerFlags(
  argv: string[],
  pageSize: number,
  rawArgv: Buffer[] = argv.map((arg) => Buffer.from(arg)),
  checkLogrotatePath = checkLogrotate,
): FlagsResult {
  const cli = parser();
  const getUsage = (): string => {
    let text = '';
    cli.showHelp((help) => (text = help));
    return text;
  };
  try {
    const args = cli.parseSync(checkShape(argv));
    if (args._.length > 0) throw new FlagError(`Unexpected argument '${String(args._[0])}'`);
    if (args.help === true) return { kind: 'help', usage: getUsage() };
    return { kind: 'ok', flags: validate(args) };
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    return { kind: 'error', message: err.message, usage: getUsage() };
  }

  function validate(args: Record<string, unknown>): LoggerFlags {
    const text = (name: keyof typeof OPTIONS): string | undefined => {
      const value = args[name];
      if (value === undefined) return undefined;
      if (typeof value !== 'string') {
        throw new FlagError(`Failed to load non-boolean flag '${name}' via '${String(value)}'`);
      }
      return value;
    };
    /** A flag's value as the bytes of the `--name=value` argument it came from. */
    const bytes = (name: keyof typeof OPTIONS): Buffer | undefined => {
      const value = text(name);
      if (value === undefined) return undefined;
      const prefix = `--${name}=`;
      const index = argv.indexOf(prefix + value);
      return index < 0 ? Buffer.from(value) : rawArgv[index].subarray(prefix.length);
    };
    let maxSize: number;
    const maxSizeText = text('max_size')!;
    try {
      maxSize = parseBytes(maxSizeText);
    } catch (err) {
      throw new FlagError(`Failed to load flag 'max_size' with value '${maxSizeText}': ${(err as Error).message}`);
    }
    if (maxSize < pageSize) {
      throw new FlagError(
        `Expected --max_size of at least ${formatBytes(pageSize)} (one page), got '${maxSizeText}'`,
      );
    }
    const logFilename = text('log_filename');
    if (logFilename === undefined || logFilename === '') throw new FlagError('Missing required option --log_filename');
    if (!isAbsolute(logFilename)) {
      throw new FlagError(`Expected --log_filename to be an absolute path, got '${logFilename}'`);
    }
    const logrotatePath = text('logrotate_path')!;
    checkLogrotatePath(logrotatePath);
    return {
      logFilename,
      logrotateOptions: bytes('logrotate_options'),
      logrotatePath,
      maxSize,
      user: text('user'),
    };
  }
}

/** The original's check: `<path> --help` must run through the shell and exit 0. */
export function checkLogrotate(path: string): void {
  const result = spawnSync('/bin/sh', ['-c', `${path} --help > /dev/null 2>&1`], { stdio: 'ignore' });
  if (result.status !== 0) {
    throw new FlagError(
      `Failed to check logrotate: --logrotate_path='${path}': '${path} --help' exited with ${
        result.status ?? result.signal
      }`,
    );
  }
}
