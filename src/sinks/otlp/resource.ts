import { writerName, type StreamMetadata } from '../../mesos/metadata.js';

/** A resource attribute: every value we send is a string. */
export type Attribute = readonly [key: string, value: string];

/** Who wrote the lines, as OTLP resource attributes: one resource per task's container, whatever its stream. */
export interface Resource {
  attributes: Attribute[];
  /** Equal for equal attributes: lines of metadata objects that describe the same writer share a ResourceLogs. */
  key: string;
}

const IDS: readonly (readonly [keyof StreamMetadata, string])[] = [
  ['agent_id', 'mesos.agent.id'],
  ['framework_id', 'mesos.framework.id'],
  ['framework_name', 'mesos.framework.name'],
  ['executor_id', 'mesos.executor.id'],
  ['executor_name', 'mesos.executor.name'],
  ['container_id', 'mesos.container.id'],
  ['task_id', 'mesos.task.id'],
  ['task_name', 'mesos.task.name'],
];

/**
 * The resource attributes of a writer: `service.name` (the task name, else the task or executor id), `host.name`,
 * the `mesos.*` ids and names the metadata has, and labels as `mesos.task.label.<key>` / `mesos.executor.label.<key>`.
 * The stream is not among them (it is the record's `log.iostream`), so a task's stdout and stderr share a resource.
 */
export function resourceOf(meta: StreamMetadata): Resource {
  const attributes: Attribute[] = [
    ['service.name', meta.task_name ?? writerName(meta)],
    ['host.name', meta.hostname],
  ];
  for (const [field, key] of IDS) {
    const value = meta[field];
    if (typeof value === 'string') attributes.push([key, value]);
  }
  for (const [label, value] of Object.entries(meta.task_labels)) attributes.push([`mesos.task.label.${label}`, value]);
  for (const [label, value] of Object.entries(meta.executor_labels)) attributes.push([`mesos.executor.label.${label}`, value]);
  return { attributes, key: JSON.stringify(attributes) };
}

/**
 * Lines grouped by the resource that wrote them, as an ExportLogsServiceRequest wants one ResourceLogs per resource:
 * groups in the order of their first line, lines in batch order within each (so each stream's order holds).
 */
export interface ResourceGroups<R> {
  /** One entry per resource, with what the encoder made of it once. */
  resources: R[];
  /** The line indexes, group after group. */
  order: Uint32Array;
  /** Group g's lines are order[starts[g], starts[g + 1]). */
  starts: Uint32Array;
}

/**
 * Groups a batch's lines by resource. `encode` turns a resource into what the encoder writes for it; it runs once per
 * metadata object (kept as long as that object lives), not per batch.
 */
export class ResourceGrouper<R> {
  private readonly cache = new WeakMap<StreamMetadata, { key: string; encoded: R }>();

  constructor(private readonly encode: (resource: Resource) => R) {}

  group(metas: readonly StreamMetadata[]): ResourceGroups<R> {
    const count = metas.length;
    const groupOf = new Uint32Array(count);
    const groupByKey = new Map<string, number>();
    const resources: R[] = [];
    const sizes: number[] = [];
    let lastMeta: StreamMetadata | undefined;
    let lastGroup = 0;
    for (let i = 0; i < count; i++) {
      const meta = metas[i];
      // Consecutive lines mostly share one metadata object: one lookup per run of them.
      if (meta !== lastMeta) {
        const entry = this.entryOf(meta);
        let group = groupByKey.get(entry.key);
        if (group === undefined) {
          group = resources.length;
          groupByKey.set(entry.key, group);
          resources.push(entry.encoded);
          sizes.push(0);
        }
        lastMeta = meta;
        lastGroup = group;
      }
      groupOf[i] = lastGroup;
      sizes[lastGroup]++;
    }
    const starts = new Uint32Array(resources.length + 1);
    for (let g = 0; g < resources.length; g++) starts[g + 1] = starts[g] + sizes[g];
    const order = new Uint32Array(count);
    const next = starts.slice(0, resources.length);
    for (let i = 0; i < count; i++) order[next[groupOf[i]]++] = i;
    return { resources, order, starts };
  }

  private entryOf(meta: StreamMetadata): { key: string; encoded: R } {
    let entry = this.cache.get(meta);
    if (entry === undefined) {
      const resource = resourceOf(meta);
      entry = { key: resource.key, encoded: this.encode(resource) };
      this.cache.set(meta, entry);
    }
    return entry;
  }
}
