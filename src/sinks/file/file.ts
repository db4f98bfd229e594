import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { NodeFiles, type WriteProgress } from './node-files.js';
import { NodePath } from './node-path.js';
import { FORMATS, RecordEncoder, type FileFormat, type FileRecords } from './records.js';

export const DEFAULT_PATH = '/var/log/mesos/containers/{framework_id}_{executor_id}_{container_id}-{stream}.log';

/** The normalized `file` sink options, as check-config prints them. */
export interface FileOptions {
  format: FileFormat;
  path: string;
  max_size: number;
  max_files: number;
  /** Octal, as written: "0640". */
  file_mode: string;
  batch: BatchOptions;
}

/** A mode as an operator writes it, quoted: three octal digits, optionally after a 0. The owner must read and write. */
function parseFileMode(reader: ConfigReader): string {
  const raw = reader.map.file_mode;
  const mode = reader.string('file_mode', '0640');
  if (typeof raw === 'number') {
    throw new ConfigError(reader.key('file_mode'), raw, 'must be a quoted octal mode such as "0640" (YAML reads 0640 unquoted as a number)');
  }
  if (!/^0?[0-7]{3}$/.test(mode) || (parseInt(mode, 8) & 0o600) !== 0o600) {
    throw new ConfigError(reader.key('file_mode'), mode, 'must be an octal mode such as "0640" that lets the owner read and write');
  }
  return mode.padStart(4, '0');
}

function parse(reader: ConfigReader): FileOptions {
  const path = reader.string('path', DEFAULT_PATH);
  // Checked here, so that a bad path is a config error rather than a sink that never writes.
  new NodePath(reader.key('path'), path);
  return {
    format: reader.oneOf('format', FORMATS, 'docker_json'),
    path,
    max_size: reader.bytes('max_size', 10 * 1024 * 1024, 4096),
    max_files: reader.integer('max_files', 5, 1, 1000),
    file_mode: parseFileMode(reader),
    batch: parseBatch(reader.child('batch'), { max_lines: 1024, max_bytes: 1 << 20, max_delay_ms: 0 }),
  };
}

/**
 * Appends each line as a record, Docker json-file or CRI format, to a node file chosen by the line's metadata, which
 * collectors tail with their stock parsers. A batch is delivered once written (in the page cache: what collectors
 * read); a failed write is retried from where it stopped.
 */
class FileSink extends Sink {
  /** Records are encoded into the encoder's own buffer: nothing refers to a batch's bytes after its send. */
  protected override reuseBatches = true;
  private readonly paths: NodePath;
  private readonly encoder: RecordEncoder;
  private readonly files: NodeFiles;
  /** The batch being written, as records, and how far its writes got: a retry resumes there, writing nothing twice. */
  private pending: { batch: LineBatch; runs: FileRecords[]; progress: WriteProgress } | undefined;

  constructor(options: FileOptions, context: SinkContext) {
    super(context);
    this.batchBy(options.batch);
    this.paths = new NodePath('path', options.path);
    this.encoder = new RecordEncoder(options.format);
    const rotation = { maxSize: options.max_size, maxFiles: options.max_files, mode: parseInt(options.file_mode, 8) };
    this.files = new NodeFiles(this.paths, rotation, this.log);
  }

  protected async send(batch: LineBatch): Promise<void> {
    if (this.pending?.batch !== batch) {
      const runs = this.encoder.encode(batch, (meta, time) => this.paths.render(meta, time));
      this.pending = { batch, runs, progress: { run: 0, offset: 0 } };
    }
    await this.files.write(this.pending.runs, this.pending.progress);
    this.pending = undefined;
  }

  protected close(): Promise<void> {
    return this.files.close();
  }
}

export const fileSink: SinkType<FileOptions> = {
  type: 'file',
  parse,
  create: (options, context) => new FileSink(options, context),
};
