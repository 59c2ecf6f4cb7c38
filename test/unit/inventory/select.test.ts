import { describe, expect, it } from 'vitest';
import { selectHosts } from '../../../src/inventory/select.js';
import type { HostConfig } from '../../../src/inventory/types.js';

const hosts = ['render1', 'render2', 'gpu-box'].map((name) => ({ name }) as HostConfig);

describe('selectHosts', () => {
  it('keeps every host without --hosts or --exclude', () => {
    expect(selectHosts(hosts, undefined, undefined).map((h) => h.name)).toEqual(['render1', 'render2', 'gpu-box']);
  });

  it('picks with --hosts, in inventory order, and leaves out --exclude', () => {
    expect(selectHosts(hosts, ['gpu-box', 'render1'], undefined).map((h) => h.name)).toEqual(['render1', 'gpu-box']);
    expect(selectHosts(hosts, undefined, ['render2']).map((h) => h.name)).toEqual(['render1', 'gpu-box']);
    expect(selectHosts(hosts, ['render1', 'render2'], ['render2']).map((h) => h.name)).toEqual(['render1']);
  });

  it('refuses a name not in the inventory, with a suggestion', () => {
    expect(() => selectHosts(hosts, ['rendr1'], undefined)).toThrow(
      '--hosts rendr1: no host of that name in the inventory (did you mean "render1"?)',
    );
    expect(() => selectHosts(hosts, undefined, ['gpubox'])).toThrow(/--exclude gpubox: .*did you mean "gpu-box"/);
  });

  it('refuses a selection that leaves no host', () => {
    expect(() => selectHosts(hosts, ['render1'], ['render1'])).toThrow(/leave no host/);
  });
});

describe('selectHosts on an inventory re-read during a run', () => {
  it('keeps applying --hosts and --exclude, and a name no longer in the file is no error', () => {
    const edited = [...hosts, { name: 'render3' } as HostConfig].filter((h) => h.name !== 'render2');
    expect(selectHosts(edited, ['render1', 'render2'], undefined, { reread: true }).map((h) => h.name)).toEqual([
      'render1',
    ]);
    expect(selectHosts(edited, undefined, ['render2', 'gpu-box'], { reread: true }).map((h) => h.name)).toEqual([
      'render1',
      'render3',
    ]);
  });

  it('still refuses a selection that leaves no host', () => {
    expect(() => selectHosts(hosts, ['render9'], undefined, { reread: true })).toThrow(/leave no host/);
  });
});
