import { createReadStream } from 'node:fs';

/**
 * The CRC of POSIX `cksum` (polynomial 0x04C11DB7, most significant bit
 * first, the length appended), the one checksum every host has and, with
 * coreutils' carry-less multiply, nearly free there: 200 MB in 0.03 s here,
 * against 0.41 s for sha256sum. Table-driven, 8 bytes a step: about 600 MB/s.
 */
const TABLES = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[0]![i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++)
    for (let k = 1; k < 8; k++) t[k]![i] = ((t[k - 1]![i]! << 8) ^ t[0]![t[k - 1]![i]! >>> 24]!) >>> 0;
  return t;
})();

export class Cksum {
  private crc = 0;
  private length = 0;

  update(buf: Uint8Array): this {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    let crc = this.crc;
    let i = 0;
    const n = buf.length;
    for (; i + 8 <= n; i += 8) {
      const a = (crc ^ ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!)) >>> 0;
      crc =
        (t7[a >>> 24]! ^
          t6[(a >>> 16) & 255]! ^
          t5[(a >>> 8) & 255]! ^
          t4[a & 255]! ^
          t3[buf[i + 4]!]! ^
          t2[buf[i + 5]!]! ^
          t1[buf[i + 6]!]! ^
          t0[buf[i + 7]!]!) >>>
        0;
    }
    for (; i < n; i++) crc = ((crc << 8) ^ t0[((crc >>> 24) ^ buf[i]!) & 255]!) >>> 0;
    this.crc = crc;
    this.length += n;
    return this;
  }

  /** As `cksum` prints it: "CRC SIZE". */
  digest(): string {
    const t0 = TABLES[0]!;
    let crc = this.crc;
    for (let l = this.length; l > 0; l = Math.floor(l / 256))
      crc = ((crc << 8) ^ t0[((crc >>> 24) ^ (l & 255)) & 255]!) >>> 0;
    return `${~crc >>> 0} ${this.length}`;
  }
}

/** `size`, if known, keeps the read buffer no larger than the file: a 1 MiB buffer per small file kept the GC busy. */
export function cksumFile(path: string, size?: number, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const sum = new Cksum();
    createReadStream(path, {
      highWaterMark: Math.max(1, Math.min(1 << 20, size ?? 1 << 20)),
      ...(signal ? { signal } : {}),
    })
      .on('data', (c) => sum.update(c as Buffer))
      .on('error', reject)
      .on('end', () => resolve(sum.digest()));
  });
}
