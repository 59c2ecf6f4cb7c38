import type { HostConfig } from './types.js';

/** What an edit of the inventory changes for a run, host by host (matched by name). */
export interface InventoryDiff {
  /** In the new inventory only: they connect and start taking tasks. */
  added: HostConfig[];
  /** In the old one only: they finish what they run and leave. */
  removed: HostConfig[];
  /** In both, written differently (slots, port, user, workdir, env, ...): the new entry replaces the old one. */
  changed: Array<{ before: HostConfig; after: HostConfig; fields: string[] }>;
}

/** Where an entry was written (file:line) moves with every edit above it and changes nothing about the host. */
function comparable(h: HostConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (k !== 'source') out[k] = JSON.stringify(v);
  return out;
}

function changedFields(a: HostConfig, b: HostConfig): string[] {
  const x = comparable(a);
  const y = comparable(b);
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => x[k] !== y[k]).sort();
}

export function diffInventory(before: readonly HostConfig[], after: readonly HostConfig[]): InventoryDiff {
  const old = new Map(before.map((h) => [h.name, h]));
  const next = new Map(after.map((h) => [h.name, h]));
  const diff: InventoryDiff = { added: [], removed: [], changed: [] };
  for (const h of after) {
    const was = old.get(h.name);
    if (!was) diff.added.push(h);
    else {
      const fields = changedFields(was, h);
      if (fields.length > 0) diff.changed.push({ before: was, after: h, fields });
    }
  }
  for (const h of before) if (!next.has(h.name)) diff.removed.push(h);
  return diff;
}

/** One line for the terminal: "+r4, -r2, r1 (slots 2 -> 4)", or "" when nothing changed. */
export function describeDiff(diff: InventoryDiff): string {
  const parts = [
    ...diff.added.map((h) => `+${h.name}`),
    ...diff.removed.map((h) => `-${h.name}`),
    ...diff.changed.map(({ before, after, fields }) =>
      fields.length === 1 && fields[0] === 'slots'
        ? `${after.name} (slots ${before.slots} -> ${after.slots})`
        : `${after.name} (${fields.join(', ')} changed)`,
    ),
  ];
  return parts.join(', ');
}
