/** The schemas by file name, as the files in schemas/ hold them (see schemas.mjs). */
export function makeSchemas(): Record<string, string>;
