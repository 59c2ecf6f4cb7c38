import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadInventory, parseHostString } from '../../../src/inventory/load.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-inv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const noSshConfig = join(dir, 'no-ssh-config');
let n = 0;
function load(yaml: string, sshConfig?: string): ReturnType<typeof loadInventory> {
  const file = join(dir, `inv${++n}.yaml`);
  writeFileSync(file, yaml);
  let cfg = noSshConfig;
  if (sshConfig !== undefined) {
    cfg = join(dir, `ssh_config${n}`);
    writeFileSync(cfg, sshConfig);
  }
  return loadInventory(file, { sshConfigPath: cfg });
}

describe('parseHostString', () => {
  it.each([
    ['render1.lan', { host: 'render1.lan' }],
    ['bob@render1.lan', { host: 'render1.lan', user: 'bob' }],
    ['bob@render1.lan:2222', { host: 'render1.lan', user: 'bob', port: 2222 }],
    ['10.0.0.7:22', { host: '10.0.0.7', port: 22 }],
    ['[::1]:2200', { host: '::1', port: 2200 }],
  ])('%s', (text, parsed) => {
    expect(parseHostString(text)).toEqual(parsed);
  });
  it.each(['a b', 'host:99999', '@host', ''])('refuses %j', (text) => {
    expect(() => parseHostString(text)).toThrow(/not \[user@\]host\[:port\]/);
  });
});

describe('loadInventory', () => {
  it("applies defaults, with a host's own fields winning", () => {
    const hosts = load(`
defaults:
  user: render
  slots: 2
  workdir: renders
  env: { OMP_NUM_THREADS: 4, A: "x" }
hosts:
  - render1.lan
  - host: render2.lan
    slots: 8
    env: { A: "y" }
  - host: 10.0.0.7
    name: gpu-box
    port: 2222
    user: ops
  - local: true
`);
    expect(hosts.map((h) => [h.name, h.host, h.port, h.user, h.slots, h.workdir])).toEqual([
      ['render1.lan', 'render1.lan', 22, 'render', 2, 'renders'],
      ['render2.lan', 'render2.lan', 22, 'render', 8, 'renders'],
      ['gpu-box', '10.0.0.7', 2222, 'ops', 2, 'renders'],
      ['local', 'localhost', 0, userInfo().username, 2, 'renders'],
    ]);
    expect(hosts[1]!.env).toEqual({ OMP_NUM_THREADS: '4', A: 'y' });
    expect(hosts[0]!.hostKeyPolicy).toBe('strict');
    expect(hosts[3]!.local).toBe(true);
  });

  it('resolves names through ssh_config, with inventory fields winning', () => {
    const hosts = load(
      `hosts:\n  - farm1\n  - host: farm2\n    user: me\n`,
      'Host farm*\n  HostName 10.1.2.3\n  User cfguser\n  Port 2202\n  IdentityFile ~/.ssh/farm_key\n  ProxyJump ops@bastion:2222\n',
    );
    expect(hosts[0]).toMatchObject({ name: 'farm1', host: '10.1.2.3', user: 'cfguser', port: 2202 });
    expect(hosts[0]!.identityFiles[0]).toMatch(/\.ssh\/farm_key$/);
    expect(hosts[0]!.jump).toMatchObject({ host: 'bastion', port: 2222, user: 'ops' });
    expect(hosts[1]!.user).toBe('me');
  });

  it('takes a jump host as a string or a mapping', () => {
    const hosts = load(`
defaults:
  jump: ops@bastion.example.com:2222
hosts:
  - a
  - host: b
    jump: { host: other, user: x }
`);
    expect(hosts[0]!.jump).toMatchObject({ host: 'bastion.example.com', port: 2222, user: 'ops' });
    expect(hosts[1]!.jump).toMatchObject({ host: 'other', port: 22, user: 'x' });
  });

  it.each([
    [
      'hosts:\n  - host: a\n    slotz: 2\n',
      /inv\d+\.yaml:3: unknown field "slotz" in a host entry under "hosts:" \(host 1\) \(did you mean "slots"\?\)/,
    ],
    ['hosts:\n  - host: a\n    slots: 0\n', /inv\d+\.yaml:3: host 1: slots must be at least 1, got 0/],
    ['hosts:\n  - a\n  - a\n', /inv\d+\.yaml:3: the host name "a" is already used/],
    ['hosts: [\n', /inv\d+\.yaml:\d+:\d+: invalid YAML/],
    ['hosts: []\n', /list at least one host/],
    [
      'defaults:\n  hostKeyPolicy: yolo\nhosts: [a]\n',
      /inv\d+\.yaml:2: defaults: hostKeyPolicy must be one of strict, accept-new, off, got "yolo"/,
    ],
    ['hosts:\n  - port: 22\n', /inv\d+\.yaml:2: a host needs "host:"/],
    ['hosts:\n  - host: a\n    identityFile: /nonexistent/key\n', /identityFile \/nonexistent\/key does not exist/],
    ['hosts:\n  - "a b"\n', /inv\d+\.yaml:2: "a b" is not/],
  ])('refuses %j with file and line', (yaml, message) => {
    expect(() => load(yaml)).toThrow(message);
  });

  it('names the local user by default', () => {
    expect(load('hosts: [a]\n')[0]!.user).toBe(userInfo().username);
  });

  it('says where a misplaced field belongs, at the line of its key, and never suggests the word typed', () => {
    let message = '';
    try {
      load('defaults:\n  user: render\nhost:\n  - a\n  - b\n');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(
      /inv\d+\.yaml:3: unknown field "host" at the top level of the file \(did you mean "hosts"\?\); "host:" belongs in a host entry/,
    );
    expect(message).not.toMatch(/did you mean "host"\?/);
    expect(() => load('defaults:\n  sshConfig: ~/x\nhosts: [a]\n')).toThrow(
      /inv\d+\.yaml:2: unknown field "sshConfig" under "defaults:"; "sshConfig:" belongs at the top level of the file/,
    );
    expect(() => load('defaults:\n  sshConfig: ~/x\nhosts: [a]\n')).not.toThrow(/did you mean "sshConfig"/);
  });

  it('says which host, its line, the field and the value in a schema error', () => {
    expect(() => load('hosts:\n  - a\n  - host: b\n    user: x\n    port: "22x"\n')).toThrow(
      /inv\d+\.yaml:5: host 2: port must be a number, got "22x"/,
    );
  });

  it('shows the line and a caret under a YAML error, and no dangling colon', () => {
    let message = '';
    try {
      load('hosts:\n  - a: b: c\n');
    } catch (err) {
      message = (err as Error).message;
    }
    const [head, line, caret] = message.split('\n');
    expect(head).toMatch(/inv\d+\.yaml:2:\d+: invalid YAML: \w.*[^:]$/);
    expect(line).toBe('    - a: b: c');
    expect(caret).toMatch(/^ +\^$/);
    expect(line![caret!.length - 1]).not.toBe(' ');
  });

  it('takes "host: user@h:port" in a mapping as the plain string does', () => {
    const [h] = load('hosts:\n  - { host: bob@127.0.0.1:22301, name: h1 }\n');
    expect(h).toMatchObject({ name: 'h1', host: '127.0.0.1', user: 'bob', port: 22301 });
    expect(() => load('hosts:\n  - { host: bob@a:22, user: eve }\n')).toThrow(
      /inv\d+\.yaml:2: .*names user bob but "user:" says eve/,
    );
  });

  it('names hosts that share an address host:port, and user@host:port when that repeats too', () => {
    const hosts = load(
      'hosts:\n  - 127.0.0.1:22301\n  - host: 127.0.0.1\n    port: 22302\n  - a@10.0.0.1:22\n  - b@10.0.0.1:22\n  - solo.lan\n',
    );
    expect(hosts.map((h) => h.name)).toEqual([
      '127.0.0.1:22301',
      '127.0.0.1:22302',
      'a@10.0.0.1:22',
      'b@10.0.0.1:22',
      'solo.lan',
    ]);
  });
});
