/** The host shell script runs under any POSIX sh: its tests run under each of these (Debian's dash, bash, busybox). */
export const SHELLS: ReadonlyArray<{ name: string; argv: string[] }> = [
  { name: 'dash', argv: ['dash'] },
  { name: 'bash', argv: ['bash', '--posix'] },
  { name: 'busybox sh', argv: ['busybox', 'sh'] },
];
