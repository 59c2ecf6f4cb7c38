/** How the run shows its progress: a live view, one line per event, or failures only. */
export type View = 'live' | 'plain' | 'quiet';

/**
 * The live view redraws the terminal, which only a real terminal can take:
 * a pipe, a CI log or TERM=dumb (Emacs shells, some IDE consoles) get plain lines.
 */
export function chooseView(o: {
  plain: boolean;
  quiet: boolean;
  isTTY: boolean;
  env: Readonly<Record<string, string | undefined>>;
}): View {
  if (o.quiet) return 'quiet';
  if (o.plain || !o.isTTY || o.env.TERM === 'dumb') return 'plain';
  return 'live';
}
