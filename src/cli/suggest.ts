import { meantOption } from './argv.js';
import { RUN_OPTIONS } from './options.js';

type RunOptionName = keyof typeof RUN_OPTIONS;

/**
 * Words after <exec> that are not distray's options go to the renderer, so a
 * misspelt `--ouput` would reach it silently. These warnings name each such
 * word and the option it looks like; words after `--` are the user's explicit
 * choice and are never warned about. (Before <exec> such a word is refused:
 * see parseArgv.)
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
    const meant = meantOption(name, Object.keys(RUN_OPTIONS) as RunOptionName[]);
    if (meant) {
      warnings.push(
        `"${word}" is not an option of distray and was passed to the renderer; did you mean --${meant}? Put the renderer's options after "--" to silence this`,
      );
    }
  }
  return warnings;
}
