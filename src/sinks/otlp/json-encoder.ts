import type { LineBatch } from '../../lines/line-batch.js';
import { IOSTREAM_ATTRIBUTE, PARTIAL_ATTRIBUTE, SCOPE_NAME, SEVERITY, unixNanos } from './log-record.js';
import { ResourceGrouper, type Attribute, type Resource } from './resource.js';

const stringAttribute = ([key, value]: Attribute): string => JSON.stringify({ key, value: { stringValue: value } });

/** `"resource":{...}` of a ResourceLogs. */
const resourceJson = (resource: Resource): string =>
  `"resource":{"attributes":[${resource.attributes.map(stringAttribute).join(',')}]}`;

const SCOPE = JSON.stringify({ name: SCOPE_NAME });
const PARTIAL = `,${JSON.stringify({ key: PARTIAL_ATTRIBUTE, value: { boolValue: true } })}`;

/** What follows a record's body, per stream: its severity and attributes up to the partial flag. */
const streamJson = (stream: keyof typeof SEVERITY): { severity: string; iostream: string } => ({
  severity: `"severityNumber":${SEVERITY[stream].number},"severityText":"${SEVERITY[stream].text}"`,
  iostream: stringAttribute([IOSTREAM_ATTRIBUTE, stream]),
});
const STREAM_JSON = { stdout: streamJson('stdout'), stderr: streamJson('stderr') };

/**
 * Encodes a batch as an OTLP ExportLogsServiceRequest in the OTLP/JSON mapping: lowerCamelCase names, 64-bit
 * integers (the times) as decimal strings, enums (severityNumber) as numbers.
 */
export class JsonLogsEncoder {
  readonly contentType = 'application/json';
  private readonly grouper = new ResourceGrouper(resourceJson);

  encode(batch: LineBatch): Buffer {
    const { metas, partials, starts, stops, times, data } = batch;
    const { resources, order, starts: groupStarts } = this.grouper.group(metas);
    const parts: string[] = ['{"resourceLogs":['];
    let lastTime = NaN;
    let time = '';
    for (let g = 0; g < resources.length; g++) {
      parts.push(g === 0 ? '{' : ',{', resources[g], `,"scopeLogs":[{"scope":${SCOPE},"logRecords":[`);
      for (let k = groupStarts[g]; k < groupStarts[g + 1]; k++) {
        const i = order[k];
        if (times[i] !== lastTime) {
          lastTime = times[i];
          time = `"${unixNanos(lastTime)}"`;
        }
        const fields = STREAM_JSON[metas[i].stream];
        // toString('utf8') replaces invalid sequences with U+FFFD, as batch.utf8(i) does.
        const body = JSON.stringify(data.toString('utf8', starts[i], stops[i]));
        parts.push(
          k === groupStarts[g] ? '{' : ',{',
          `"timeUnixNano":${time},"observedTimeUnixNano":${time},${fields.severity},"body":{"stringValue":${body}},`,
          `"attributes":[${fields.iostream}${partials[i] === 1 ? PARTIAL : ''}]}`,
        );
      }
      parts.push(']}]}');
    }
    parts.push(']}');
    return Buffer.from(parts.join(''));
  }
}
