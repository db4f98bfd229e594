import { elasticsearchSink } from './elasticsearch/elasticsearch.js';
import { execSink } from './exec/exec.js';
import { fileSink } from './file/file.js';
import { fluentSink } from './fluent/fluent.js';
import { httpSink } from './http/http.js';
import { journaldSink } from './journald/journald.js';
import { kafkaSink } from './kafka/kafka.js';
import { lokiSink } from './loki/loki.js';
import { otlpSink } from './otlp/otlp.js';
import type { SinkType } from './sink-type.js';
import { syslogSink } from './syslog/syslog.js';

/** Every sink type, by the `type:` an operator writes in the config. */
export const SINK_TYPES: ReadonlyMap<string, SinkType> = new Map(
  [journaldSink, syslogSink, execSink, otlpSink, fluentSink, kafkaSink, httpSink, lokiSink, fileSink, elasticsearchSink].map((sink) => [sink.type, sink as SinkType]),
);
