import { describe, expect, it } from 'vitest';
import { HostStates, canMove, type HostState, type HostStateRecord } from '../../../src/scheduler/hostStates.js';

function host(): HostStateRecord {
  return { name: 'a', state: 'connecting' };
}

describe('HostStates', () => {
  it('counts a host on while it connects or reconnects, and once only however often it is said', () => {
    const states = new HostStates();
    const a = host();
    states.move(a, 'connecting', undefined, true);
    states.move(a, 'connecting', 'try 2');
    expect(states.pending).toBe(1);
    expect(a.message).toBe('try 2');
    states.move(a, 'ok');
    expect(states.pending).toBe(0);
    expect(states.everReady).toBe(true);
    expect(a.message).toBeUndefined();
    states.move(a, 'lost', 'connection reset');
    states.move(a, 'reconnecting', 'connection reset');
    states.move(a, 'reconnecting', 'still refused');
    expect(states.pending).toBe(1);
    // The run stops waiting for it; it is still retried, and counted on again while it is.
    states.move(a, 'lost', 'still unreachable 60 s after it was lost');
    expect(states.pending).toBe(0);
    states.move(a, 'reconnecting');
    states.move(a, 'ok');
    states.move(a, 'done');
    expect(states.pending).toBe(0);
    expect(a.state).toBe('done');
  });

  it('refuses a move that cannot happen, changing nothing, and says so', () => {
    const refused: string[] = [];
    const states = new HostStates((name, from, to) => refused.push(`${name}: ${from} -> ${to}`));
    const a = host();
    states.move(a, 'connecting', undefined, true);
    states.move(a, 'ok');
    // A ready host is not made ready again without a loss, nor does a late failure of an old connection move it.
    expect(states.move(a, 'ok')).toBe(false);
    expect(states.move(a, 'unreachable', 'a late failure')).toBe(false);
    expect(a.state).toBe('ok');
    expect(states.pending).toBe(0);
    expect(refused).toEqual(['a: ok -> ok', 'a: ok -> unreachable']);
  });

  it('ends in done or cancelled, and nothing moves it from there', () => {
    for (const end of ['done', 'cancelled'] as const) {
      for (const to of ['connecting', 'reconnecting', 'ok', 'lost', 'removed', 'done'] as HostState[])
        expect(canMove(end, to)).toBe(false);
    }
  });

  it('lets a refused host (a key, a login, a workdir) be tried again only by an edit of its entry', () => {
    for (const refusal of ['auth failed', 'host key mismatch', 'workdir', 'unreachable'] as HostState[]) {
      expect(canMove(refusal, 'ok')).toBe(false);
      expect(canMove(refusal, 'reconnecting')).toBe(true);
      expect(canMove(refusal, 'removed')).toBe(true);
    }
    expect(canMove('blocked', 'ok')).toBe(false);
    expect(canMove('blocked', 'reconnecting')).toBe(true);
    expect(canMove('removed', 'connecting')).toBe(true);
    expect(canMove('removed', 'ok')).toBe(false);
  });
});
