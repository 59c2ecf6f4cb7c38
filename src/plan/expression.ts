/**
 * The arithmetic inside `%{...}`: numbers, names, + - * / and parentheses.
 * Pure: parse once, evaluate per task.
 */
export type Expr =
  | { kind: 'num'; value: number }
  | { kind: 'name'; name: string }
  | { kind: 'neg'; operand: Expr }
  | { kind: 'bin'; op: '+' | '-' | '*' | '/'; left: Expr; right: Expr };

export class ExpressionError extends Error {}

type Token = { kind: 'num'; value: number } | { kind: 'name'; name: string } | { kind: 'op'; op: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/()]))/y;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new ExpressionError(`unexpected "${text.slice(pos).trim()}"`);
    if (m[1] !== undefined) tokens.push({ kind: 'num', value: Number(m[1]) });
    else if (m[2] !== undefined) tokens.push({ kind: 'name', name: m[2] });
    else tokens.push({ kind: 'op', op: m[3]! });
    pos = re.lastIndex;
  }
  return tokens;
}

export function parseExpression(text: string): Expr {
  const tokens = tokenize(text);
  let i = 0;
  const peekOp = (): string | undefined => {
    const t = tokens[i];
    return t?.kind === 'op' ? t.op : undefined;
  };
  function primary(): Expr {
    const t = tokens[i++];
    if (!t) throw new ExpressionError('expression ends too early');
    if (t.kind === 'num') return { kind: 'num', value: t.value };
    if (t.kind === 'name') return { kind: 'name', name: t.name };
    if (t.op === '-') return { kind: 'neg', operand: primary() };
    if (t.op === '+') return primary();
    if (t.op === '(') {
      const e = sum();
      if (peekOp() !== ')') throw new ExpressionError('missing ")"');
      i++;
      return e;
    }
    throw new ExpressionError(`unexpected "${t.op}"`);
  }
  function product(): Expr {
    let e = primary();
    for (let op = peekOp(); op === '*' || op === '/'; op = peekOp()) {
      i++;
      e = { kind: 'bin', op, left: e, right: primary() };
    }
    return e;
  }
  function sum(): Expr {
    let e = product();
    for (let op = peekOp(); op === '+' || op === '-'; op = peekOp()) {
      i++;
      e = { kind: 'bin', op, left: e, right: product() };
    }
    return e;
  }
  if (tokens.length === 0) throw new ExpressionError('empty expression');
  const e = sum();
  if (i < tokens.length) throw new ExpressionError(`unexpected "${describe(tokens[i]!)}"`);
  return e;
}

function describe(t: Token): string {
  return t.kind === 'num' ? String(t.value) : t.kind === 'name' ? t.name : t.op;
}

export function namesOf(e: Expr, into = new Set<string>()): Set<string> {
  if (e.kind === 'name') into.add(e.name);
  else if (e.kind === 'neg') namesOf(e.operand, into);
  else if (e.kind === 'bin') {
    namesOf(e.left, into);
    namesOf(e.right, into);
  }
  return into;
}

export type Value = number | string;

export function evaluate(e: Expr, vars: Readonly<Record<string, Value>>): Value {
  switch (e.kind) {
    case 'num':
      return e.value;
    case 'name': {
      const v = vars[e.name];
      if (v === undefined) throw new ExpressionError(`unknown name "${e.name}"`);
      return v;
    }
    case 'neg':
      return -numeric(evaluate(e.operand, vars), e.operand);
    case 'bin': {
      const a = numeric(evaluate(e.left, vars), e.left);
      const b = numeric(evaluate(e.right, vars), e.right);
      switch (e.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          if (b === 0) throw new ExpressionError('division by zero');
          return a / b;
      }
    }
  }
}

function numeric(v: Value, e: Expr): number {
  if (typeof v === 'number') return v;
  const what = e.kind === 'name' ? `"${e.name}"` : 'a name';
  throw new ExpressionError(`${what} is text and cannot be used in arithmetic`);
}

/** Integers print as integers, others with at most 6 decimals and no trailing zeros. */
export function formatValue(v: Value): string {
  if (typeof v === 'string') return v;
  // Past 2^53 a number is no longer exact, and it would print as 1e+21.
  if (!(Math.abs(v) <= Number.MAX_SAFE_INTEGER))
    throw new ExpressionError(`the result ${v} is too large (at most ${Number.MAX_SAFE_INTEGER})`);
  const rounded = Math.round(v * 1e6) / 1e6;
  if (Number.isInteger(rounded)) return String(rounded === 0 ? 0 : rounded);
  return rounded.toFixed(6).replace(/0+$/, '');
}
