import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runHostScript, type HostScript } from '../../../src/hosts/hostScript.js';
import { loadInventory } from '../../../src/inventory/load.js';
import type { HostConfig } from '../../../src/inventory/types.js';
import { eventually } from '../../helpers/wait.js';

// The one "run a script on these hosts" of check and clean, on the local host (SSH hosts: test/integration/hosts.test.ts, clean.test.ts).

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-hostscript-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function localHost(): HostConfig {
  const path = join(dir, 'farm.yaml');
  writeFileSync(path, `hosts:\n  - local: true\n    workdir: ${join(dir, 'wd')}\n`);
  return loadInventory(path)[0]!;
}

const script = (body: string, over: Partial<HostScript> = {}): HostScript => ({
  script: `printf 'login noise'\nprintf '\\n%s\\n' "$2"\n${body}`,
  name: 'distray-test',
  args: (_, workdir, marker) => [workdir, marker],
  what: 'the test script',
  deadlineMs: 60_000,
  ...over,
});

describe('runHostScript', () => {
  it('gives what the script said after its marker, with its arguments and input, and all the host printed', async () => {
    const host = localHost();
    const [o] = await runHostScript([host], script('echo "wd $1"; cat; echo oops >&2', { input: () => 'in\n' }), {
      warn: () => {},
    });
    expect(o).toMatchObject({ kind: 'ran', server: 'local' });
    if (o?.kind !== 'ran') throw new Error('not ran');
    expect(o.said).toBe(`wd ${join(dir, 'wd')}\nin\noops\n`);
    expect(o.output.startsWith('login noise\n')).toBe(true);
  });

  it('says undefined when the marker never came', async () => {
    const [o] = await runHostScript([localHost()], script('', { args: () => [] }), { warn: () => {} });
    expect(o).toMatchObject({ kind: 'ran', said: undefined });
  });

  it('stops a script at its deadline and says which script did not finish', async () => {
    const [o] = await runHostScript([localHost()], script('exec sleep 30', { deadlineMs: 200 }), { warn: () => {} });
    expect(o).toMatchObject({
      kind: 'failed',
      state: 'timeout',
      message: expect.stringMatching(/the test script did not finish within 0\.2 s$/) as unknown,
    });
  });

  it('stops every host’s script when its signal is aborted, and starts none once it is', async () => {
    const stop = new AbortController();
    const host = localHost();
    const started = join(dir, 'started');
    const running = runHostScript([host], script(`: >"${started}"; exec sleep 30`), {
      warn: () => {},
      signal: stop.signal,
    });
    expect(await eventually(() => existsSync(started), 30_000)).toBe(true);
    stop.abort();
    expect(await running).toMatchObject([{ kind: 'failed', state: 'cancelled' }]);
    expect(
      await runHostScript([host, host], script('echo never'), { warn: () => {}, signal: stop.signal }),
    ).toMatchObject([
      { kind: 'failed', state: 'cancelled' },
      { kind: 'failed', state: 'cancelled' },
    ]);
  });
});
