#!/usr/bin/env node
// distray's example renderer: a tiny deterministic ray tracer (a ball bouncing
// over a checkered floor) that writes one frame, or one region of it, as PNG.
// It is a single file on purpose: distray copies it to each host with --in, so
// it may use nothing but Node's own modules.
//
//   node ray.mjs FRAME OUT.png [--res WxH] [--frames N] [--region X0,Y0,X1,Y1]
//
// --region renders only the pixels X0 <= x < X1, Y0 <= y < Y1 (origin top-left)
// and writes an image of just that region, identical to the same pixels of the
// whole frame.
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

function usage(msg) {
  process.stderr.write(`ray.mjs: ${msg}\nusage: node ray.mjs FRAME OUT.png [--res WxH] [--frames N] [--region X0,Y0,X1,Y1]\n`);
  process.exit(2);
}

const positional = [];
const opts = { res: '320x180', frames: '48', region: undefined };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const m = /^--(res|frames|region)(?:=(.*))?$/.exec(a);
  if (m) opts[m[1]] = m[2] ?? process.argv[++i];
  else positional.push(a);
}
const [frameText, out] = positional;
if (frameText === undefined || out === undefined || !/^-?\d+$/.test(frameText)) usage('FRAME and OUT are required');
const frame = Number(frameText);
const sm = /^(\d+)x(\d+)$/.exec(opts.res);
if (!sm) usage(`--res ${opts.res} is not WxH`);
const W = Number(sm[1]);
const H = Number(sm[2]);
const frames = Number(opts.frames);
let [x0, y0, x1, y1] = [0, 0, W, H];
if (opts.region) {
  const r = opts.region.split(',').map(Number);
  if (r.length !== 4 || r.some((v) => !Number.isInteger(v))) usage(`--region ${opts.region} is not X0,Y0,X1,Y1`);
  [x0, y0, x1, y1] = r;
  if (x0 < 0 || y0 < 0 || x1 > W || y1 > H || x0 >= x1 || y0 >= y1) usage(`--region ${opts.region} is outside ${W}x${H}`);
}

// The scene at this frame: the ball bounces once per `frames` frames and drifts sideways.
const t = (((frame % frames) + frames) % frames) / frames;
const ball = { x: Math.sin(t * 2 * Math.PI) * 1.2, y: 0.6 + 1.6 * Math.abs(Math.sin(t * Math.PI)), z: 4, r: 0.6 };
const light = norm([-0.5, 1, -0.6]);

function norm(v) {
  const l = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / l, v[1] / l, v[2] / l];
}
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

function hitBall(o, d) {
  const oc = [o[0] - ball.x, o[1] - ball.y, o[2] - ball.z];
  const b = dot(oc, d);
  const c = dot(oc, oc) - ball.r * ball.r;
  const disc = b * b - c;
  if (disc < 0) return Infinity;
  const s = -b - Math.sqrt(disc);
  return s > 1e-6 ? s : Infinity;
}

function shade(o, d, depth) {
  const tb = hitBall(o, d);
  const tf = d[1] < 0 ? -o[1] / d[1] : Infinity;
  if (tb === Infinity && tf === Infinity) {
    const k = 0.5 + 0.5 * d[1];
    return [0.35 + 0.3 * k, 0.5 + 0.3 * k, 0.9];
  }
  if (tb < tf) {
    const p = [o[0] + d[0] * tb, o[1] + d[1] * tb, o[2] + d[2] * tb];
    const n = norm([p[0] - ball.x, p[1] - ball.y, p[2] - ball.z]);
    const diffuse = Math.max(0, dot(n, light));
    const base = [0.9, 0.25 + 0.2 * t, 0.15];
    const col = base.map((c) => c * (0.15 + 0.85 * diffuse));
    if (depth > 0) {
      const r = norm(d.map((v, i) => v - 2 * dot(d, n) * n[i]));
      const refl = shade(p, r, depth - 1);
      return col.map((c, i) => c * 0.75 + refl[i] * 0.25);
    }
    return col;
  }
  const p = [o[0] + d[0] * tf, 0, o[2] + d[2] * tf];
  const check = (Math.floor(p[0]) + Math.floor(p[2])) & 1;
  const shadow = hitBall(p, light) < Infinity ? 0.35 : 1;
  const fog = Math.exp(-0.04 * tf);
  const c = check ? 0.85 : 0.2;
  return [c * shadow * fog + 0.6 * (1 - fog), c * shadow * fog + 0.7 * (1 - fog), c * shadow * fog + 0.9 * (1 - fog)];
}

const w = x1 - x0;
const h = y1 - y0;
const raw = Buffer.alloc((w * 3 + 1) * h);
const eye = [0, 1.4, -1.5];
const fov = Math.tan((50 * Math.PI) / 360);
for (let y = y0; y < y1; y++) {
  const row = (y - y0) * (w * 3 + 1);
  raw[row] = 0; // PNG filter: none
  for (let x = x0; x < x1; x++) {
    // 2x2 samples per pixel on a fixed pattern: antialiased, and a pixel's value depends on nothing but (x, y).
    const acc = [0, 0, 0];
    for (const [sx, sy] of [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) {
      const u = ((2 * (x + sx)) / W - 1) * fov * (W / H);
      const v = (1 - (2 * (y + sy)) / H) * fov;
      const c = shade(eye, norm([u, v - 0.15, 1]), 2);
      for (let i = 0; i < 3; i++) acc[i] += c[i] / 4;
    }
    const at = row + 1 + (x - x0) * 3;
    for (let i = 0; i < 3; i++) raw[at + i] = Math.max(0, Math.min(255, Math.round(Math.sqrt(acc[i]) * 255)));
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(w, 0);
ihdr.writeUInt32BE(h, 4);
ihdr[8] = 8; // bit depth
ihdr[9] = 2; // RGB
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', ihdr),
  chunk('IDAT', deflateSync(raw)),
  chunk('IEND', Buffer.alloc(0)),
]);
writeFileSync(out, png);
process.stderr.write(`ray.mjs: frame ${frame} ${W}x${H} region ${x0},${y0},${x1},${y1} -> ${out}\n`);
