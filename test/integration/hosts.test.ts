import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
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

async function check(
  inv: string,
  cwd: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<CliResult & { rows: Row[] }> {
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

  it('reports a workdir that cannot be created', async () => {
    const cwd = dir();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, good, { workdir: '/etc/hostname/work' })}\n`,
      'badwd.yaml',
    );
    const r = await check(inv, cwd);
    expect(r.code).toBe(3);
    expect(r.rows[0]).toMatchObject({ state: 'workdir' });
    expect(r.rows[0]!.message).toMatch(/\/etc\/hostname\/work.*cannot be created/);
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
    writeFileSync(
      kh,
      `@revoked * ${other.hostKey}\n[127.0.0.1]:${other.port} ${other.hostKey}\n@cert-authority [127.0.0.1]:${third.port} ${good.hostKey}\n`,
      { flag: 'a' },
    );
    const inv = farm.inventory(
      `${defaultsBlock(farm).replace(farm.knownHosts, kh)}hosts:\n${[good, other, third].map((h) => hostEntry(farm, h)).join('\n')}\n`,
      'hashed.yaml',
    );
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
    const changed = await check(
      farm.inventory(
        `${defaultsBlock(farm, '  hostKeyPolicy: accept-new\n').replace(farm.knownHosts, kh)}hosts:\n${hostEntry(farm, many[0]!)}\n`,
        'changed.yaml',
      ),
      cwd,
    );
    expect(changed.rows[0]!.state).toBe('host key mismatch');
    await Promise.all(many.map((h) => h.stop()));
  });

  it('hostKeyPolicy off connects, with a loud warning', async () => {
    const cwd = dir();
    const kh = join(cwd, 'empty_known_hosts');
    writeFileSync(kh, '');
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  hostKeyPolicy: off\n').replace(farm.knownHosts, kh)}hosts:\n${hostEntry(farm, good)}\n`,
      'off.yaml',
    );
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
    const inv = farm.inventory(
      `defaults:\n  knownHosts: ${farm.knownHosts}\nhosts:\n  - host: target\n    workdir: ${join(third.workdir, 'chain')}\n`,
      'chain.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,2',
        'sh',
        '-c',
        'echo "frame $0" > out$0',
        '%d',
        '--out',
        'out%d=f%d',
        '--ssh-config',
        join(cfgDir, 'config'),
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f2'), 'utf8')).toBe('frame 2\n');
    // j1 forwarded to j2, and j2 to the target.
    expect(readFileSync(good.log, 'utf8')).toMatch(
      new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${other.port}(?!\\d)`),
    );
    expect(readFileSync(other.log, 'utf8')).toMatch(
      new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${third.port}(?!\\d)`),
    );
  });
});

describe('the agent and IdentitiesOnly', () => {
  it('logs in with a key from the SSH agent, and IdentitiesOnly keeps a crowded agent from using up MaxAuthTries', async () => {
    const cwd = dir();
    const agentOut = execFileSync('ssh-agent', ['-s', '-a', join(cwd, 'agent.sock')]).toString();
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agentOut)![1]!;
    const env = { SSH_AUTH_SOCK: join(cwd, 'agent.sock') };
    try {
      // Four keys the server does not know, then the right one (sshd's default MaxAuthTries is 6).
      for (let i = 0; i < 4; i++) {
        keygen(join(cwd, `stranger${i}`));
        execFileSync('ssh-add', [join(cwd, `stranger${i}`)], { env: { ...process.env, ...env }, stdio: 'ignore' });
      }
      execFileSync('ssh-add', [farm.clientKey], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const strict = await farm.start('maxauth', 'MaxAuthTries 3');
      const unknownKey = join(cwd, 'not_authorized');
      keygen(unknownKey);
      const inv = (extra: string): string =>
        farm.inventory(
          `defaults:\n  user: ${farm.user}\n  knownHosts: ${farm.knownHosts}\n${extra}hosts:\n${hostEntry(farm, good)}\n${hostEntry(farm, strict)}\n`,
          `agent${n}.yaml`,
        );
      // The identity file is not authorized anywhere: only the agent can log in.
      const viaAgent = await runCliWithAgent(['check', inv(`  identityFile: ${unknownKey}\n`), '--json'], cwd, env);
      const rows = JSON.parse(viaAgent.stdout) as Row[];
      expect(rows.find((r) => r.name === 'good')!.state, JSON.stringify(rows)).toBe('ok');
      // 5 agent keys against MaxAuthTries 3: the right one comes too late.
      const maxauth = rows.find((r) => r.name === 'maxauth')!;
      expect(maxauth.state).toBe('auth failed');
      expect(maxauth.message).toMatch(/too many authentication failures.*identitiesOnly: true/);
      const only = await runCliWithAgent(
        ['check', inv(`  identityFile: ${farm.clientKey}\n  identitiesOnly: true\n`), '--json'],
        cwd,
        env,
      );
      expect((JSON.parse(only.stdout) as Row[]).map((r) => r.state)).toEqual(['ok', 'ok']);
      await strict.stop();
    } finally {
      process.kill(Number(pid));
    }
  });
});

/** runCli drops SSH_AUTH_SOCK so no developer's agent leaks in; this one passes a test agent on purpose. */
async function runCliWithAgent(args: string[], cwd: string, env: Record<string, string>): Promise<CliResult> {
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('../helpers/cli.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('arguments through the remote shells', () => {
  it('delivers random arguments byte for byte through sshd, the login shell and the host shell', async () => {
    const cwd = dir();
    writeFileSync(join(cwd, 'argv.sh'), '#!/bin/sh\nout=$1\nshift\nprintf "%s\\0" "$@" > "$out"\n', { mode: 0o755 });
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, good, { workdir: join(good.workdir, 'fuzz') })}\n`,
      'fuzz.yaml',
    );
    let seed = 1234;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const alphabet = ' \t\n\'"\\$`;|&<>(){}[]*?!#~=,.-_/aZ09é✓\u00a0';
    for (let round = 0; round < 3; round++) {
      const args = Array.from({ length: 60 }, () =>
        Array.from({ length: next() % 14 }, () => alphabet[next() % alphabet.length]).join(''),
      );
      // distray's own words and placeholders are not what this test is about.
      const safe = args.map((a) => a.replace(/%/g, '%%')).filter((a) => !/^--/.test(a));
      const r = await runCli(
        ['run', inv, String(round), './argv.sh', 'out.bin', ...safe, '--in', 'argv.sh', '--out', 'out.bin=got%d.bin'],
        { cwd },
      );
      expect(r.code, r.stderr).toBe(0);
      const got = readFileSync(join(cwd, `got${round}.bin`), 'utf8')
        .split('\0')
        .slice(0, -1);
      expect(got).toEqual(safe.map((a) => a.replace(/%%/g, '%')));
    }
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
    const run = await runCli(['run', inv, '1,2', 'sh', '-c', 'exit $0', '%d', '--report', 'r.json', '--retries', '0'], {
      cwd,
      env: { DISTRAY_KEY_PASSPHRASE: passphrase },
    });
    const dry = await runCli(['run', inv, '1', 'x', '--dry-run'], { cwd, env: { DISTRAY_KEY_PASSPHRASE: passphrase } });
    outputs.push(ok.stdout + ok.stderr, run.stdout + run.stderr, dry.stdout + dry.stderr);
    expect(run.code).toBe(1);
    for (const text of [
      ...outputs,
      ...filesUnder(cwd)
        .filter((f) => !f.endsWith('enc_key'))
        .map((f) => readFileSync(f, 'utf8')),
    ]) {
      expect(text).not.toContain(passphrase);
    }
  });

  it('logs in with a password from the environment and never writes it anywhere', async () => {
    if (process.getuid?.() !== 0)
      return expect.fail('the password test creates a user and needs root (CI runs as root)');
    const cwd = dir();
    // A user of this run's own: other checkouts run this test at the same time on this
    // machine, and each sets its own password (with one shared user, the last one won).
    const user = `distraypw${randomInt(100_000, 1_000_000)}`;
    const password = `pw-${Math.random().toString(36).slice(2)}-S3cret!`;
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    onTestFinished(() => {
      try {
        execFileSync('userdel', ['-f', '-r', user], { stdio: 'ignore' });
      } catch {
        // Still logged in somewhere, or its mail spool missing: a leftover user is harmless.
      }
    });
    execFileSync('chpasswd', { input: `${user}:${password}\n` });
    const host = await farm.start('pw', 'PasswordAuthentication yes');
    // The farm's directories are root's; this user works in one of its own.
    const workdir = mkdtempSync(join(tmpdir(), 'distraypw-'));
    execFileSync('chown', [user, workdir]);
    const inv = farm.inventory(
      `defaults:\n  user: ${user}\n  identityFile: ${farm.clientKey}\n  knownHosts: ${farm.knownHosts}\nhosts:\n${hostEntry(farm, host, { workdir, password: true })}\n`,
      'pw.yaml',
    );
    const without = await check(inv, cwd);
    expect(without.rows[0]!.state).toBe('auth failed');
    const r = await runCli(
      ['run', inv, '1,2', 'sh', '-c', 'whoami > out$0', '%d', '--out', 'out%d=f%d', '--report', 'r.json'],
      { cwd, env: { DISTRAY_PASSWORD: password } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f1'), 'utf8')).toBe(`${user}\n`);
    const failing = await runCli(
      ['run', inv, '1', 'sh', '-c', 'echo "$0" >&2; exit 3', 'boom', '--report', 'r2.json', '--retries', '0'],
      { cwd, env: { DISTRAY_PASSWORD: password } },
    );
    expect(failing.code).toBe(1);
    for (const text of [
      r.stdout,
      r.stderr,
      failing.stdout,
      failing.stderr,
      without.stdout,
      without.stderr,
      ...filesUnder(cwd).map((f) => readFileSync(f, 'utf8')),
    ]) {
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
