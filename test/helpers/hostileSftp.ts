// Run as `node --import tsx test/helpers/hostileSftp.ts` as a host's SFTP
// subsystem: a hostile SFTP server. It sits in front of the real
// sftp-server, passes every packet through, and in the replies to directory
// listings (SSH_FXP_NAME answering SSH_FXP_READDIR) gives the entries named
// in LISTED_AS other names: names no honest server sends.
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** An entry the host really has, and the name this server lists it under. */
export const LISTED_AS: Readonly<Record<string, string>> = {
  'evil-dotdot': '../../x',
  'evil-newline': 'forged\nline',
  'evil-slash': 'sub/x',
  'evil-escape': '\x1b[2Jcleared',
};

const SSH_FXP_READDIR = 12;
const SSH_FXP_NAME = 104;
const ATTR = { size: 0x1, uidgid: 0x2, permissions: 0x4, acmodtime: 0x8, extended: 0x80000000 };

/** Calls `onPacket` with each whole SFTP packet (length prefix included) read from `input`. */
function packets(input: Readable, onPacket: (packet: Buffer) => void): void {
  let pending = Buffer.alloc(0);
  input.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
      const size = 4 + pending.readUInt32BE(0);
      onPacket(pending.subarray(0, size));
      pending = pending.subarray(size);
    }
  });
}

function lengthOf(b: Buffer): Buffer {
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return l;
}

/** The NAME packet with its entries renamed as LISTED_AS says (attributes kept byte for byte). */
function renamed(packet: Buffer): Buffer {
  let at = 9;
  const count = packet.readUInt32BE(at);
  at += 4;
  const parts: Buffer[] = [packet.subarray(4, 13)];
  const string = (): Buffer => {
    const len = packet.readUInt32BE(at);
    const s = packet.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = string().toString('utf8');
    const longname = string();
    const attrsStart = at;
    const flags = packet.readUInt32BE(at);
    at += 4;
    if (flags & ATTR.size) at += 8;
    if (flags & ATTR.uidgid) at += 8;
    if (flags & ATTR.permissions) at += 4;
    if (flags & ATTR.acmodtime) at += 8;
    if (flags & ATTR.extended) {
      const pairs = packet.readUInt32BE(at);
      at += 4;
      for (let j = 0; j < 2 * pairs; j++) string();
    }
    const shown = Buffer.from(LISTED_AS[name] ?? name, 'utf8');
    parts.push(lengthOf(shown), shown, lengthOf(longname), longname, packet.subarray(attrsStart, at));
  }
  parts.push(packet.subarray(at));
  const body = Buffer.concat(parts);
  return Buffer.concat([lengthOf(body), body]);
}

function proxy(client: { in: Readable; out: Writable }, server: { in: Writable; out: Readable }): void {
  const listings = new Set<number>();
  packets(client.in, (p) => {
    if (p[4] === SSH_FXP_READDIR) listings.add(p.readUInt32BE(5));
    server.in.write(p);
  });
  packets(server.out, (p) => {
    const id = p.length >= 9 ? p.readUInt32BE(5) : -1;
    if (p[4] === SSH_FXP_NAME && listings.delete(id)) client.out.write(renamed(p));
    else {
      listings.delete(id);
      client.out.write(p);
    }
  });
}

if (process.argv[1]?.endsWith('hostileSftp.ts')) {
  const server = spawn('/usr/lib/openssh/sftp-server', [], { stdio: ['pipe', 'pipe', 'inherit'] });
  proxy({ in: process.stdin, out: process.stdout }, { in: server.stdin, out: server.stdout });
  process.stdin.on('end', () => server.stdin.end());
  server.on('exit', (code) => process.exit(code ?? 1));
}
