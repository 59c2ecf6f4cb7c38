import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { defaultsBlock, freePort, hostEntry, keygen, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

let farm: Farm;
let good: SshdHost, other: SshdHost, third: SshdHost;
let n = 0;

function dir(): string {
  const d = join(farm.dir, `h${++n}`);
  mkdirSync(d, { recursive: true });
  return d;
}

interface Row {
  name: string;
  state: string;
  server?: string;
  message?: string;
  exec?: string | null;
  cpus?: number;
}

async function check(inv: string, cwd: string, extra: string[] = [], env: Record<string, string> = {}): Promise<CliResult & { rows: Row[] }> {
  const r = await runCli(['check', inv, '--json', ...extra], { cwd, env });
  let rows: Row[] = [];
  try {
    rows = JSON.parse(r.stdout) as Row[];
  } catch {
    // Left empty: the assertions say what was expected.
  }
  return { ...r, rows };
}

beforeAll(async () => {
  farm = startFarm();
  [good, other, third] = [await farm.start('good'), await farm.start('other'), await farm.start('third')];
});

afterAll(async () => {
  await farm?.stop();
});

describe('host keys', () => {
  it('check reports each host with a clear reason, and exits 1 when some are unusable', async () => {
    const cwd = dir();
    const kh = join(cwd, 'known_hosts');
    const dead = await freePort();
    // good: known; other: listed with another host's key (changed); third: not listed (unknown).
    writeFileSync(kh, `[127.0.0.1]:${good.port} ${good.hostKey}\n[127.0.0.1]:${other.port} ${good.hostKey}\n`);
    const inv = farm.inventory(
      `${defaultsBlock(farm).replace(farm.knownHosts, kh)}hosts:\n${[good, other, third].map((h) => hostEntry(farm, h)).join('\n')}\n  - host: 127.0.0.1\n    name: dead\n    port: ${dead}\n  - host: no-such-host.invalid\n    name: nxdomain\n`,
      'check.yaml',
    );
    const r = await check(inv, cwd, ['--exec', 'povray']);
    expect(r.code, r.stderr).toBe(1);
    const by = Object.fromEntries(r.rows.map((row) => [row.name, row]));
    expect(by.good).toMatchObject({ state: 'ok', exec: '/usr/bin/povray' });
    expect(by.good!.server).toMatch(/^OpenSSH_/);
    expect(by.good!.cpus).toBeGreaterThan(0);
    expect(by.other!.state).toBe('host key mismatch');
    expect(by.other!.message).toMatch(/CHANGED.*SHA256:[A-Za-z0-9+/]{43}.*ssh-keygen -R/s);
    expect(by.third!.state).toBe('host key unknown');
    expect(by.third!.message).toMatch(/SHA256:[A-Za-z0-9+/]{43}.*not in/);
    expect(by.dead).toMatchObject({ state: 'unreachable' });
    expect(by.dead!.message).toMatch(/refused/);
    expect(by.nxdomain).toMatchObject({ state: 'unreachable' });
    expect(by.nxdomain!.message).toMatch(/no such host/);

    // The table names the same causes.
    const table = await runCli(['check', inv], { cwd });
    expect(table.stdout).toMatch(/^HOST\s+STATE\s+CPUS/);
    expect(table.stdout).toContain('other: host key mismatch:');
  });

  it('exits 3 from check when no host is usable, and reports a missing program', async () => {
    const cwd = dir();
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, good)}\n`, 'check3.yaml');
    const r = await check(inv, cwd, ['--exec', 'no-such-renderer']);
    expect(r.code).toBe(3);
    expect(r.rows[0]).toMatchObject({ state: 'exec missing', exec: null });
  });

  it('accepts hashed known_hosts entries and refuses @revoked and @cert-authority ones', async () => {
    const cwd = dir();
    const kh = join(cwd, 'known_hosts');
    writeFileSync(kh, `[127.0.0.1]:${good.port} ${good.hostKey}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' });
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/);
    writeFileSync(kh, `@revoked * ${other.hostKey}\n[127.0.0.1]:${other.port} ${other.hostKey}\n@cert-authority [127.0.0.1]:${third.port} ${good.hostKey}\n`, { flag: 'a' });
    const inv = farm.inventory(`${defaultsBlock(farm).replace(farm.knownHosts, kh)}hosts:\n${[good, other, third].map((h) => hostEntry(farm, h)).join('\n')}\n`, 'hashed.yaml');
    const r = await check(inv, cwd);
    const by = Object.fromEntries(r.rows.map((row) => [row.name, row]));
    expect(by.good!.state).toBe('ok');
    expect(by.other!.state).toBe('host key revoked');
    expect(by.third!.state).toBe('host key unknown');
    expect(by.third!.message).toMatch(/@cert-authority.*does not support host certificates/);
  });

  it('accept-new adds each unknown key exactly once, even from two runs at once, and still refuses a changed key', async () => {
    const cwd = dir();
    const many: SshdHost[] = [];
    for (let i = 0; i < 20; i++) many.push(await farm.start(`many${i}`));
    const kh = join(cwd, 'known_hosts');
    writeFileSync(kh, '# distray test\n', { mode: 0o600 });
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  hostKeyPolicy: accept-new\n').replace(farm.knownHosts, kh)}hosts:\n${many.map((h) => hostEntry(farm, h)).join('\n')}\n`,
      'acceptnew.yaml',
    );
    const [a, b] = await Promise.all([check(inv, cwd), check(inv, cwd)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const lines = readFileSync(kh, 'utf8').trim().split('\n').slice(1);
    expect(lines).toHaveLength(20);
    expect(new Set(lines).size).toBe(20);
    for (const h of many) expect(lines).toContain(`[127.0.0.1]:${h.port} ${h.hostKey}`);
    expect(statSync(kh).mode & 0o777).toBe(0o600);
    expect(readdirSync(cwd).filter((f) => f !== 'known_hosts')).toEqual([]);
    // A third run adds nothing.
    await check(inv, cwd);
    expect(readFileSync(kh, 'utf8').trim().split('\n')).toHaveLength(21);

    // A changed key is refused under accept-new too.
    writeFileSync(kh, `[127.0.0.1]:${many[0]!.port} ${good.hostKey}\n`);
    const changed = await check(farm.inventory(`${defaultsBlock(farm, '  hostKeyPolicy: accept-new\n').replace(farm.knownHosts, kh)}hosts:\n${hostEntry(farm, many[0]!)}\n`, 'changed.yaml'), cwd);
    expect(changed.rows[0]!.state).toBe('host key mismatch');
    await Promise.all(many.map((h) => h.stop()));
  });

  it('hostKeyPolicy off connects, with a loud warning', async () => {
    const cwd = dir();
    const kh = join(cwd, 'empty_known_hosts');
    writeFileSync(kh, '');
    const inv = farm.inventory(`${defaultsBlock(farm, '  hostKeyPolicy: off\n').replace(farm.knownHosts, kh)}hosts:\n${hostEntry(farm, good)}\n`, 'off.yaml');
    const r = await check(inv, cwd);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/hostKeyPolicy is off: trusting \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:/);
    expect(readFileSync(kh, 'utf8')).toBe('');
  });
});

describe('reaching hosts the way ssh does', () => {
  it('follows an ssh_config with Include and a ProxyJump chain through two jump hosts', async () => {
    const cwd = dir();
    const cfgDir = join(cwd, 'ssh');
    mkdirSync(join(cfgDir, 'conf.d'), { recursive: true });
    writeFileSync(
      join(cfgDir, 'config'),
      `Include ${cfgDir}/conf.d/*\nHost *\n  User ${farm.user}\n  IdentityFile ${farm.clientKey}\n  UserKnownHostsFile ${farm.knownHosts}\n`,
    );
    writeFileSync(
      join(cfgDir, 'conf.d', 'farm'),
      `Host j1\n  HostName 127.0.0.1\n  Port ${good.port}\nHost j2\n  HostName 127.0.0.1\n  Port ${other.port}\nHost target\n  HostName 127.0.0.1\n  Port ${third.port}\n  ProxyJump j1,j2\n`,
    );
    const inv = farm.inventory(`defaults:\n  knownHosts: ${farm.knownHosts}\nhosts:\n  - host: target\n    workdir: ${join(third.workdir, 'chain')}\n`, 'chain.yaml');
    const r = await runCli(['run', inv, '1,2', 'sh', '-c', 'echo "frame $0" > out$0', '%d', '--out', 'out%d=f%d', '--ssh-config', join(cfgDir, 'config')], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f2'), 'utf8')).toBe('frame 2\n');
    // j1 forwarded to j2, and j2 to the target.
    expect(readFileSync(good.log, 'utf8')).toMatch(new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${other.port}(?!\\d)`));
    expect(readFileSync(other.log, 'utf8')).toMatch(new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${third.port}(?!\\d)`));
  });
});

describe('secrets', () => {
  it('uses an encrypted key with the passphrase from the environment, and explains when it is missing', async () => {
    const cwd = dir();
    const passphrase = 'correct horse battery staple 42';
    const key = join(cwd, 'enc_key');
    const pub = keygen(key, 'ed25519', passphrase);
    const host = await farm.start('enc');
    writeFileSync(join(farm.dir, 'authorized_keys'), pub + '\n', { flag: 'a' });
    const inv = farm.inventory(
      `defaults:\n  user: ${farm.user}\n  identityFile: ${key}\n  knownHosts: ${farm.knownHosts}\nhosts:\n${hostEntry(farm, host)}\n`,
      'enc.yaml',
    );
    const without = await check(inv, cwd);
    expect(without.rows[0]!.state).toBe('auth failed');
    expect(without.rows[0]!.message).toMatch(/enc_key is encrypted: set DISTRAY_KEY_PASSPHRASE/);

    const wrong = await check(inv, cwd, [], { DISTRAY_KEY_PASSPHRASE: 'nope' });
    expect(wrong.rows[0]!.message).toMatch(/the one set did not decrypt it/);

    const outputs: string[] = [without.stdout + without.stderr, wrong.stdout + wrong.stderr];
    const ok = await check(inv, cwd, [], { DISTRAY_KEY_PASSPHRASE: passphrase });
    expect(ok.rows[0]!.state).toBe('ok');
    const run = await runCli(['run', inv, '1,2', 'sh', '-c', 'exit $0', '%d', '--report', 'r.json', '--retries', '0'], { cwd, env: { DISTRAY_KEY_PASSPHRASE: passphrase } });
    const dry = await runCli(['run', inv, '1', 'x', '--dry-run'], { cwd, env: { DISTRAY_KEY_PASSPHRASE: passphrase } });
    outputs.push(ok.stdout + ok.stderr, run.stdout + run.stderr, dry.stdout + dry.stderr);
    expect(run.code).toBe(1);
    for (const text of [...outputs, ...filesUnder(cwd).filter((f) => !f.endsWith('enc_key')).map((f) => readFileSync(f, 'utf8'))]) {
      expect(text).not.toContain(passphrase);
    }
  });

  it('logs in with a password from the environment and never writes it anywhere', async () => {
    if (process.getuid?.() !== 0) return expect.fail('the password test creates a user and needs root (CI runs as root)');
    const cwd = dir();
    const user = 'distraypw';
    const password = `pw-${Math.random().toString(36).slice(2)}-S3cret!`;
    try {
      execFileSync('id', [user], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    }
    execFileSync('chpasswd', { input: `${user}:${password}\n` });
    const host = await farm.start('pw', 'PasswordAuthentication yes');
    // The farm's directories are root's; this user works in one of its own.
    const workdir = mkdtempSync(join(tmpdir(), 'distraypw-'));
    execFileSync('chown', [user, workdir]);
    const inv = farm.inventory(
      `defaults:\n  user: ${user}\n  identityFile: ${farm.clientKey}\n  knownHosts: ${farm.knownHosts}\nhosts:\n${hostEntry(farm, host, { workdir })}\n`,
      'pw.yaml',
    );
    const without = await check(inv, cwd);
    expect(without.rows[0]!.state).toBe('auth failed');
    const r = await runCli(['run', inv, '1,2', 'sh', '-c', 'whoami > out$0', '%d', '--out', 'out%d=f%d', '--report', 'r.json'], { cwd, env: { DISTRAY_PASSWORD: password } });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f1'), 'utf8')).toBe(`${user}\n`);
    const failing = await runCli(['run', inv, '1', 'sh', '-c', 'echo "$0" >&2; exit 3', 'boom', '--report', 'r2.json', '--retries', '0'], { cwd, env: { DISTRAY_PASSWORD: password } });
    expect(failing.code).toBe(1);
    for (const text of [r.stdout, r.stderr, failing.stdout, failing.stderr, without.stdout, without.stderr, ...filesUnder(cwd).map((f) => readFileSync(f, 'utf8'))]) {
      expect(text).not.toContain(password);
    }
    rmSync(workdir, { recursive: true, force: true });
  });
});

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

