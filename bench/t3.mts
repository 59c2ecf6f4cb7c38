import { startFarm } from '../test/helpers/sshd.js';
import ssh2 from 'ssh2';
import net from 'node:net';
import { readFileSync } from 'node:fs';
const farm = startFarm();
const h = await farm.start('x', process.argv[2] ?? '');
const sock = net.connect(h.port, '127.0.0.1');
sock.setNoDelay(process.argv[3] === 'nodelay');
await new Promise((r) => sock.once('connect', r));
const c = new ssh2.Client();
await new Promise<void>((res, rej) => { c.on('ready', () => res()); c.on('error', rej); c.connect({ sock, username: farm.user, privateKey: readFileSync(farm.clientKey) }); });
const exec = (cmd: string) => new Promise<number>((res) => { const t = performance.now(); c.exec(cmd, (err, ch) => { if (err) throw err; ch.on('data', () => {}); ch.stderr.on('data', () => {}); ch.on('close', () => res(performance.now() - t)); }); });
for (const cmd of ['true', 'sleep 0.1']) {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push(await exec(cmd));
  console.log(cmd, 'serial', times.map((t) => t.toFixed(0)).join(' '));
}
const t0 = performance.now();
await Promise.all([0, 1, 2, 3].map(async () => { for (let i = 0; i < 10; i++) await exec('sleep 0.1'); }));
console.log('4 parallel x 10 sleep 0.1:', (performance.now() - t0).toFixed(0), 'ideal 1000');
c.end();
await farm.stop();
