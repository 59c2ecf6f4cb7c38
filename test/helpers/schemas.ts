import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const load = (file: string): object =>
  JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8')) as object;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
ajv.addSchema(load('events.schema.json'), 'events');
let report: ValidateFunction | undefined;
const line = (): ValidateFunction => ajv.getSchema('events')!;

function check(validate: ValidateFunction, value: unknown, what: string): void {
  if (!validate(value))
    throw new Error(
      `${what} does not match its schema: ${ajv.errorsText(validate.errors, { separator: '\n' })}\n${JSON.stringify(value).slice(0, 2000)}`,
    );
}

/** Fails (throws) unless `value` is a --report file as schemas/report.schema.json describes it. */
export function checkReport(value: unknown): void {
  report ??= ajv.compile(load('report.schema.json'));
  check(report, value, 'the report');
}

/**
 * Fails (throws) unless every line of an --events stream is an event as
 * schemas/events.schema.json describes it: checked against its own type's
 * definition (AttemptEndedEvent for `attempt-ended`), so a failure says
 * what is wrong with that event, then against the whole schema.
 */
export function checkEventLines(text: string): void {
  for (const [i, raw] of text.trim().split('\n').entries()) {
    const event = JSON.parse(raw) as { type?: unknown };
    const name =
      typeof event.type === 'string'
        ? `${event.type.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}Event`
        : '';
    const own = ajv.getSchema(`events#/definitions/${name}`);
    if (!own) throw new Error(`event line ${i + 1} has a type the schema does not know: ${raw.slice(0, 200)}`);
    check(own, event, `event line ${i + 1} (${String(event.type)})`);
    check(line(), event, `event line ${i + 1}`);
  }
}
