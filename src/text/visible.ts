/**
 * Text from elsewhere (a renderer's output, a host's name or login banner,
 * a file name) printed on a terminal: its control characters are shown as
 * `\xNN` instead of acted on, so an escape sequence in a failing
 * renderer's output can neither set the window's title, clear the screen
 * nor move the cursor over distray's lines, and a right-to-left override
 * cannot reorder what follows it (shown as `\uNNNN`). Newlines and tabs stay (a
 * renderer's last lines are shown as lines); a carriage return, which would
 * draw over the start of the line, does not. JUnit does the same for XML
 * (report/junit.ts); the page and the HTML report escape text as HTML.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** `\xNN`, or for the bidirectional marks and overrides (which would reorder the rest of the line) `\uNNNN`. */
function shown(c: string): string {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** `text` with its control characters (but newline and tab) made visible. */
export function visible(text: string): string {
  return text.replace(CONTROL, shown);
}
