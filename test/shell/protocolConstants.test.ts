import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as protocol from '../../src/hostShell/protocol.js';

// The host shell's constants and the controller's copy of them (protocol.ts) are one set of values.
const script = readFileSync(new URL('../../src/hostShell/hostShell.sh', import.meta.url), 'utf8');

/** NAME=VALUE assignments of the script's constants, as `NAME=123` on a line of their own. */
function scriptConstants(): Map<string, number> {
  const found = new Map<string, number>();
  for (const m of script.matchAll(/^([A-Z][A-Z0-9_]*)=(\d+)$/gm)) found.set(m[1]!, Number(m[2]));
  return found;
}

describe('the host shell and the controller agree on', () => {
  const inScript = scriptConstants();
  const inProtocol = Object.entries(protocol).filter(([name]) => name.startsWith('EXIT_'));

  it('the names and values of every exit status', () => {
    const exits = [...inScript].filter(([name]) => name.startsWith('EXIT_'));
    expect(exits.length).toBeGreaterThan(0);
    expect(Object.fromEntries(exits)).toEqual(Object.fromEntries(inProtocol));
  });

  it('the grace between TERM and KILL (ticks of 0.2 s)', () => {
    expect(inScript.get('KILL_GRACE_TICKS')).toBeDefined();
    expect(inScript.get('KILL_GRACE_TICKS')! * 0.2).toBeCloseTo(protocol.KILL_GRACE_SECONDS);
    expect(script).toMatch(/sleep 0\.2; sp_i=/);
  });

  it('no bare exit status where a constant is meant', () => {
    const code = script.split('\n').filter((line) => !/^\s*#/.test(line) && !/^[A-Z][A-Z0-9_]*=\d+$/.test(line));
    const bare = code.filter((line) => /\b(exit|return)\s+(1[2-9]\d|2\d\d)\b|"- 1\d\d"|\b143\b/.test(line));
    expect(bare).toEqual([]);
  });
});
