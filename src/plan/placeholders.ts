import { UsageError } from '../errors.js';
import {
  ExpressionError,
  evaluate,
  formatValue,
  namesOf,
  parseExpression,
  type Expr,
  type Value,
} from './expression.js';

/** The names `%{...}` may use, and the ones that exist only with `--tiles`. */
export const TASK_NAMES = ['frame'] as const;
export const TILE_NAMES = ['tile', 'tiles', 'x0', 'y0', 'x1', 'y1', 'w', 'h', 'width', 'height'] as const;
export const HOST_NAMES = ['host'] as const;
/** With --chunk: the chunk's first and last frame and how many it has. */
export const CHUNK_NAMES = ['first', 'last', 'count'] as const;

type Part =
  { kind: 'text'; text: string } | { kind: 'frame'; width: number } | { kind: 'expr'; expr: Expr; source: string };

export interface Template {
  readonly source: string;
  /** How messages name it: "argument 3", "--out". */
  readonly where: string;
  readonly parts: readonly Part[];
  /** Every name the template reads; `%d` reads `frame`. */
  readonly names: ReadonlySet<string>;
}

export type Vars = Readonly<Record<string, Value>>;

/**
 * Parses `%d`, `%0Nd`, `%%` and `%{EXPR}`. Any other `%` sequence is an error
 * rather than a literal, so a typo never reaches a renderer silently.
 * `where` names the argument in messages ("argument 3", "--out").
 */
export function parseTemplate(source: string, where: string, allowed: ReadonlySet<string>): Template {
  const parts: Part[] = [];
  const names = new Set<string>();
  let text = '';
  let i = 0;
  const fail = (msg: string): never => {
    throw new UsageError(`${where} "${source}": ${msg}`);
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c !== '%') {
      text += c;
      i++;
      continue;
    }
    const rest = source.slice(i + 1);
    if (rest.startsWith('%')) {
      text += '%';
      i += 2;
      continue;
    }
    const pad = /^(?:0(\d+))?d/.exec(rest);
    if (pad) {
      if (text) parts.push({ kind: 'text', text });
      text = '';
      parts.push({ kind: 'frame', width: pad[1] === undefined ? 0 : Number(pad[1]) });
      names.add('frame');
      i += 1 + pad[0].length;
      continue;
    }
    if (rest.startsWith('{')) {
      const end = rest.indexOf('}');
      if (end < 0) fail('"%{" has no closing "}"');
      const exprText = rest.slice(1, end);
      let expr: Expr;
      try {
        expr = parseExpression(exprText);
      } catch (err) {
        return fail(`in %{${exprText}}: ${(err as Error).message}`);
      }
      for (const name of namesOf(expr)) {
        if (!allowed.has(name)) {
          const tileHint = (TILE_NAMES as readonly string[]).includes(name)
            ? ' (tile names need --tiles)'
            : (CHUNK_NAMES as readonly string[]).includes(name)
              ? ' (first, last and count need --chunk)'
              : '';
          fail(`unknown name "${name}" in %{${exprText}}${tileHint}; known names: ${[...allowed].join(', ')}`);
        }
        names.add(name);
      }
      if (text) parts.push({ kind: 'text', text });
      text = '';
      parts.push({ kind: 'expr', expr, source: exprText });
      i += 2 + end;
      continue;
    }
    fail(notAPlaceholder(rest));
  }
  if (text) parts.push({ kind: 'text', text });
  return { source, where, parts, names };
}

/**
 * Quotes the whole sequence as typed (printf's flags, width, precision and
 * conversion), and suggests the placeholder a printf habit meant.
 */
function notAPlaceholder(rest: string): string {
  // Only printf's conversion letters: in "%04.png" the "p" is the file name's.
  const seq = /^[-+ #0]*\d*(?:\.\d*)?[dDiouxXeEfFgGcs]?/.exec(rest)?.[0] || rest.slice(0, 1);
  const typed = `%${seq}`;
  const width = /^0*(\d+)(?:[dDiu]|\.?$)/.exec(seq)?.[1];
  const hint =
    width !== undefined
      ? ` (did you mean "%0${width}d"? distray pads with zeros only)`
      : /^[dDiu]$/.test(seq)
        ? ' (did you mean "%d"?)'
        : '';
  return `"${typed}" is not a placeholder${hint}; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %`;
}

export function formatFrame(frame: number, width: number): string {
  const digits = String(Math.abs(frame));
  const sign = frame < 0 ? '-' : '';
  return sign + digits.padStart(Math.max(0, width - sign.length), '0');
}

export function expand(t: Template, vars: Vars): string {
  let out = '';
  for (const p of t.parts) {
    if (p.kind === 'text') out += p.text;
    else if (p.kind === 'frame') out += formatFrame(Number(vars.frame), p.width);
    else {
      try {
        out += formatValue(evaluate(p.expr, vars));
      } catch (err) {
        if (err instanceof ExpressionError) {
          const task = `frame ${String(vars.frame)}${vars.tile !== undefined ? ` tile ${String(vars.tile)}` : ''}`;
          throw new UsageError(
            `${t.where} "${t.source}": %{${p.source}}: ${err.message} for ${task}; change the expression so it holds for every frame`,
          );
        }
        throw err;
      }
    }
  }
  return out;
}

export function usesAny(t: Template, names: readonly string[]): boolean {
  return names.some((n) => t.names.has(n));
}
