import type { Readable } from 'node:stream';
import type { Logger } from './diagnostics.js';
import type { SandboxStats, SandboxWriter } from './sandbox/writer.js';

export interface StreamPipelineOptions {
  /** The task's stdout or stderr: the read end of the pipe the agent hands over. */
  source: Readable;
  sandbox: SandboxWriter;
  log: Logger;
}

/**
 * One stream of one container: source -> sandbox files. Holds no process-wide state, so one process can host many.
 * The source is read only as fast as the sandbox takes it (backpressure), never faster.
 */
export class StreamPipeline {
  constructor(private readonly options: StreamPipelineOptions) {}

  /** Resolves when the source has ended and every byte is on disk (or counted as dropped). */
  run(): Promise<SandboxStats> {
    const { source, sandbox, log } = this.options;
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        void sandbox.end().then(() => resolve(sandbox.stats));
      };
      sandbox.on('drain', () => source.resume());
      source.on('data', (chunk: Buffer) => {
        if (!sandbox.write(chunk)) source.pause();
      });
      source.once('end', finish);
      source.once('error', (err) => {
        log.error({ err: err.message }, 'reading the stream failed; treating it as ended');
        finish();
      });
    });
  }
}
