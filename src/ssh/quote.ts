/**
 * POSIX single-quoting: inside '...' a POSIX shell interprets nothing, not
 * even newlines, so the only character to handle is the quote itself.
 */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** Environment variable names the shell accepts; anything else could inject code. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
