/**
 * `distray completion bash|zsh|fish`: a script that completes distray's
 * commands and options, made from the same option tables as `--help` and
 * the parser (the command tables of options.ts), so an option
 * added there is completed too. Words that are not options complete as
 * file names (inventories, renderers, inputs).
 */
import { UsageError } from '../errors.js';
import { COMMANDS as SPECS, type OptionTable } from './options.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const COMMANDS: Record<string, { about: string; options: OptionTable }> = Object.fromEntries(
  SPECS.map((c) => [c.name, { about: c.about, options: c.options }]),
);

/** The values an option takes from a fixed set, completed after it. */
const VALUES: Record<string, readonly string[]> = { order: ['sequential', 'preview'], chunk: ['auto'] };

/** Options that name a file or directory here: completed as paths after them. */
const takesValue = (table: OptionTable): string[] =>
  Object.keys(table).filter((n) => table[n]!.value && !table[n]!.optionalValue);

function bash(): string {
  const cases = Object.entries(COMMANDS)
    .map(
      ([name, { options }]) =>
        `    ${name}) opts=${JSON.stringify(
          Object.keys(options)
            .map((o) => `--${o}`)
            .concat('--help')
            .join(' '),
        )}; valued=${JSON.stringify(
          takesValue(options)
            .map((o) => `--${o}`)
            .join(' '),
        )} ;;`,
    )
    .join('\n');
  const values = Object.entries(VALUES)
    .map(([o, v]) => `      --${o}) COMPREPLY=($(compgen -W ${JSON.stringify(v.join(' '))} -- "$cur")); return ;;`)
    .join('\n');
  return `# distray's completion for bash (made by distray completion bash).
# Load it with: source <(distray completion bash)
# or keep it: distray completion bash > ~/.local/share/bash-completion/completions/distray
_distray() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd=\${COMP_WORDS[1]} opts valued
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W ${JSON.stringify(Object.keys(COMMANDS).join(' ') + ' --help --version')} -- "$cur"))
    return
  fi
  case $cmd in
${cases}
    *) return ;;
  esac
  if [ "$cmd" = completion ]; then
    COMPREPLY=($(compgen -W ${JSON.stringify(SHELLS.join(' '))} -- "$cur"))
    return
  fi
  case " $valued " in
    *" $prev "*)
      case $prev in
${values}
      esac
      COMPREPLY=($(compgen -f -- "$cur"))
      return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -o bashdefault -F _distray distray
`;
}

/** Text inside a zsh _arguments spec's [description]: its brackets and colons escaped, in single quotes. */
const zshText = (s: string): string =>
  s
    .replace(/\\/g, '\\\\')
    .replace(/([[\]:])/g, '\\$1')
    .replace(/'/g, `'\\''`);

function zsh(): string {
  const commands = Object.entries(COMMANDS)
    .map(([name, { about }]) => `    '${name}:${zshText(about)}'`)
    .join('\n');
  const cases = Object.entries(COMMANDS)
    .map(([name, { options }]) => {
      const specs = Object.entries(options).map(([o, spec]) => {
        const many = spec.repeat ? '*' : '';
        if (!spec.value) return `'${many}--${o}[${zshText(spec.help)}]'`;
        const action = VALUES[o] ? `(${VALUES[o].join(' ')})` : '_files';
        return spec.optionalValue
          ? `'${many}--${o}=-[${zshText(spec.help)}]'`
          : `'${many}--${o}=[${zshText(spec.help)}]:value:${action}'`;
      });
      const rest = name === 'completion' ? `'1:shell:(${SHELLS.join(' ')})'` : `'*:file:_files'`;
      return `    ${name})\n      _arguments -S ${[...specs, rest].join(' \\\n        ')} ;;`;
    })
    .join('\n');
  return `#compdef distray
# distray's completion for zsh (made by distray completion zsh).
# Load it with: source <(distray completion zsh)
# or keep it as _distray in a directory of your $fpath.
_distray() {
  local -a commands
  commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    _describe command commands
    return
  fi
  words=(\${words[2,-1]})
  (( CURRENT-- ))
  case $words[1] in
${cases}
  esac
}
compdef _distray distray
`;
}

/** Text in single quotes for fish. */
const fishText = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fish(): string {
  const lines = [
    "# distray's completion for fish (made by distray completion fish).",
    '# Load it with: distray completion fish | source',
    '# or keep it: distray completion fish > ~/.config/fish/completions/distray.fish',
    'complete -c distray -f',
  ];
  for (const [name, { about, options }] of Object.entries(COMMANDS)) {
    lines.push(`complete -c distray -n __fish_use_subcommand -a ${name} -d ${fishText(about)}`);
    const when = `'__fish_seen_subcommand_from ${name}'`;
    if (name === 'completion') lines.push(`complete -c distray -n ${when} -a ${fishText(SHELLS.join(' '))}`);
    else lines.push(`complete -c distray -n ${when} -F`);
    for (const [o, spec] of Object.entries(options)) {
      const values = VALUES[o]
        ? ` -x -a ${fishText(VALUES[o].join(' '))}`
        : spec.value && !spec.optionalValue
          ? ' -r -F'
          : '';
      lines.push(`complete -c distray -n ${when} -l ${o}${values} -d ${fishText(spec.help)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The completion script for `shell`. */
export function completionScript(shell: string | undefined): string {
  switch (shell) {
    case 'bash':
      return bash();
    case 'zsh':
      return zsh();
    case 'fish':
      return fish();
    default:
      throw new UsageError(
        `${shell === undefined ? 'no shell given' : `no completion for "${shell}"`}: expected distray completion bash|zsh|fish`,
      );
  }
}
