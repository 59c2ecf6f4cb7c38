/**
 * The JSON Schemas of what distray writes for other programs: the --report
 * file (RunSummary) and each line of the --events stream (EventLine, one
 * definition per event type). They are made from the TypeScript types, so
 * a field cannot change in one and not the other: `npm run schemas` writes
 * them to schemas/, and test/unit/report/schemas.test.ts fails when the
 * files there differ from what the types give (or when a real report or
 * event stream does not validate).
 */
import { writeFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';
import { createGenerator } from 'ts-json-schema-generator';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const SCHEMAS = [
  { file: 'report.schema.json', type: 'RunSummary', path: 'src/fold/types.ts', title: 'distray --report' },
  {
    file: 'events.schema.json',
    type: 'EventLine',
    path: 'src/fold/runEvents.ts',
    title: 'distray --events: one line',
  },
];

function generate({ type, path }) {
  return createGenerator({
    path: `${ROOT}/${path}`,
    tsconfig: `${ROOT}/tsconfig.json`,
    type,
    skipTypeCheck: true,
    additionalProperties: false,
    expose: 'export',
    topRef: true,
    jsDoc: 'extended',
    sortProps: true,
  }).createSchema(type);
}

/** Each event type as a definition of its own, named for its `type` (`attempt-ended` is AttemptEndedEvent). */
function nameEvents(schema) {
  const defs = schema.definitions;
  const line = defs.EventLine;
  line.anyOf = line.anyOf.map((member) => {
    const name = `${member.properties.type.const.replace(/(^|-)([a-z])/g, (_, __, c) => c.toUpperCase())}Event`;
    defs[name] = member;
    return { $ref: `#/definitions/${name}` };
  });
  line.description = 'A line of the --events stream: one event, `v` (the stream version) first. Told apart by `type`.';
  return schema;
}

/** The schemas by file name, as the files hold them. */
export function makeSchemas() {
  const out = {};
  for (const s of SCHEMAS) {
    let schema = generate(s);
    if (s.type === 'EventLine') schema = nameEvents(schema);
    const { $schema, ...rest } = schema;
    out[s.file] = `${JSON.stringify({ $schema, title: s.title, ...rest }, null, 2)}\n`;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [file, text] of Object.entries(makeSchemas())) writeFileSync(`${ROOT}/schemas/${file}`, text);
}
