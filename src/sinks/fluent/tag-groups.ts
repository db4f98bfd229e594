import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import type { Template } from '../template.js';

/** Lines of a batch that go in one Forward message: they share a tag. */
export interface TagGroup {
  tag: string;
  /** Line indices, in batch order. */
  lines: number[];
}

/**
 * Splits a batch into one group per tag (a message carries one tag), sent in this order. A batch may hold lines of
 * several streams, and a stream's tag may change within one (agent enrichment arrived, a `{date}` turned): a
 * stream's line never goes into a group before one its earlier lines went into, so each stream stays in order
 * across the messages. Usually that is one group per tag; a stream coming back to an earlier tag opens a new one.
 */
export function groupByTag(batch: LineBatch, template: Template): TagGroup[] {
  const groups: TagGroup[] = [];
  /** The group each tag's lines go into now, by its index in `groups`. */
  const openGroup = new Map<string, number>();
  /** For each stream (sandbox and stdout/stderr), the group its last line went into. */
  const streamGroup = new Map<string, number>();
  let lastMeta: StreamMetadata | undefined;
  let lastTag = '';
  let current = -1;
  for (let i = 0; i < batch.count; i++) {
    const meta = batch.metas[i];
    // The common case: the line before was the same stream's, with the same tag.
    if (meta === lastMeta && !template.usesTime) {
      groups[current].lines.push(i);
      continue;
    }
    const tag = template.render(meta, batch.times[i]);
    if (meta === lastMeta && tag === lastTag) {
      groups[current].lines.push(i);
      continue;
    }
    const stream = `${meta.sandbox}\0${meta.stream}`;
    let group = openGroup.get(tag);
    if (group === undefined || group < (streamGroup.get(stream) ?? 0)) {
      group = groups.push({ tag, lines: [] }) - 1;
      openGroup.set(tag, group);
    }
    groups[group].lines.push(i);
    streamGroup.set(stream, group);
    lastMeta = meta;
    lastTag = tag;
    current = group;
  }
  return groups;
}
