/**
 * Names a host gives in a directory listing are untrusted: its SFTP server
 * may answer with anything, and a renderer may name files as it likes.
 * Before such a name is joined to a local path it must be a plain name:
 * something that stays inside the directory being written and that cannot
 * forge a line in a log, the report or the terminal.
 */

/**
 * Control characters: C0 (newline, escape, NUL...), DEL and C1; the Unicode
 * line and paragraph separators; and the bidirectional embeddings,
 * overrides and isolates, which make a name read as another.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * Why `name` does not name an entry of the directory it was listed in, or
 * undefined if it does: no directory can hold such an entry, so only a
 * hostile (or broken) SFTP server lists one.
 */
export function placeProblem(name: string): string | undefined {
  if (name === '') return 'an empty name';
  if (name === '.' || name === '..') return 'a name for the directory itself or its parent, not an entry in it';
  if (name.includes('/')) return 'a name with a "/" in it, which would put it in another directory';
  return undefined;
}

/** Why `name` cannot be the name of a file distray writes, or undefined if it can. */
export function entryNameProblem(name: string): string | undefined {
  return (
    placeProblem(name) ??
    (CONTROL.test(name) ? 'a name with a control character in it (such as a newline or an escape)' : undefined)
  );
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\\': '\\\\',
  '"': '\\"',
};

/**
 * The name in double quotes, every control character written out (`\n`,
 * `\x1b`, `\u202e`) and `\` and `"` escaped: one line, shown as it is,
 * that cannot move the cursor or colour the terminal.
 */
export function visibleName(name: string): string {
  let out = '';
  for (const ch of name) {
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (CONTROL.test(ch)) {
      const code = ch.codePointAt(0)!;
      out += code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `"${out}"`;
}
