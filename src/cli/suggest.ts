import { levenshtein } from '../text/closest.js';
import { RUN_OPTIONS, type RunOptionName } from './argv.js';

/** distray's option a word was probably meant to be, if any. */
function meantOption(name: string): RunOptionName | undefined {
  const lower = name.toLowerCase();
  let best: RunOptionName | undefined;
  let bestDistance = Infinity;
  for (const option of Object.keys(RUN_OPTIONS) as RunOptionName[]) {
    const distance = levenshtein(lower, option);
    // "--retry" for --retries, "--output" for --out: a short form or a longer spelling of the same word.
    const shared = [...lower].findIndex((c, k) => c !== option[k]);
    const common = shared < 0 ? lower.length : shared;
    const prefix = common >= 3 && common >= Math.min(lower.length, option.length) - 1 && Math.abs(lower.length - option.length) <= 3;
    const near = distance <= (lower.length > 4 ? 2 : 1);
    if ((prefix || near) && distance < bestDistance) [best, bestDistance] = [option, distance];
  }
  return best;
}

/**
 * Words after <exec> that are not distray's options go to the renderer, so a
 * misspelt `--ouput` would reach it silently. These warnings name each such
 * word and the option it looks like; words after `--` are the user's explicit
 * choice and are never warned about.
 */
export function misspeltOptionWarnings(words: readonly string[]): string[] {
  const warnings: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') break;
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=.*)?$/s.exec(word);
    if (!m) continue;
    const name = m[1]!;
    if (name in RUN_OPTIONS) {
      if (RUN_OPTIONS[name as RunOptionName].value && !word.includes('=')) i++;
      continue;
    }
    if (name === 'help') continue;
    const meant = meantOption(name);
    if (meant) {
      warnings.push(`"${word}" is not an option of distray and was passed to the renderer; did you mean --${meant}? Put the renderer's options after "--" to silence this`);
    }
  }
  return warnings;
}
