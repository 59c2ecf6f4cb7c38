import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { checkRemotePath, entryProblem, entrySuggestion, splitCopySpec } from '../../../src/plan/paths.js';

describe('checkRemotePath', () => {
  it.each(['frame.png', 'out/frame.png', './a', 'a/..b', 'a/.distray', 'a//b', '.distrayx/y'])('accepts %j', (path) => {
    expect(() => checkRemotePath(path, '--out x')).not.toThrow();
  });

  it.each([
    ['', '--out x: the remote path is empty'],
    ['/etc/passwd', `--out x "/etc/passwd": remote paths are relative to the host's workdir; remove the leading "/"`],
    ['~/x', `--out x "~/x": remote paths are relative to the host's workdir; remove the leading "~"`],
    ['..', `--out x "..": remote paths must not contain ".."; they stay inside the host's workdir`],
    ['a/../../b', '--out x "a/../../b": remote paths must not contain ".."'],
    ['a/..', 'must not contain ".."'],
    [
      '.distray',
      `--out x ".distray": .distray/ in the workdir is distray's own (its running tasks and slot locks); use another name`,
    ],
    ['./.distray/run', ".distray/ in the workdir is distray's own"],
    ['.//.distray', ".distray/ in the workdir is distray's own"],
  ])('refuses %j: %s', (path, message) => {
    expect(() => checkRemotePath(path, '--out x')).toThrow(UsageError);
    expect(() => checkRemotePath(path, '--out x')).toThrow(message);
  });
});

describe('entryProblem', () => {
  it.each([
    ['', 'is empty'],
    ['out/', 'ends in "/"'],
    ['.', 'ends in ".", a directory and not an entry in it'],
    ['a/.', 'ends in ".", a directory and not an entry in it'],
    ['..', 'ends in "..", a directory and not an entry in it'],
    ['a/..', 'ends in "..", a directory and not an entry in it'],
    ['a', undefined],
    ['a/b.', undefined],
    ['a/..b', undefined],
    ['./a', undefined],
  ])('%j: %s', (path, problem) => {
    expect(entryProblem(path)).toBe(problem);
  });
});

describe('entrySuggestion', () => {
  it.each([
    // "x=x/" meant the entry x itself; "x=dir/" meant dir/x.
    ['x/', 'x', 'x'],
    ['dir/', 'src/x', 'dir/x'],
    ['dir/x/', 'x', 'dir/x'],
    ['/abs/dir/', 'x', '/abs/dir/x'],
    ['/', 'x', '/x'],
    ['.', 'a/b', 'b'],
    ['./', 'a/b/', 'b'],
    ['dir/.', '../x/.', 'dir/x'],
    ['dir/', '..', 'dir/NAME'],
    ['', '', 'NAME'],
  ])('%j for %j: %j', (path, other, suggestion) => {
    expect(entrySuggestion(path, other)).toBe(suggestion);
  });
});

describe('splitCopySpec', () => {
  it.each([
    ['a', '--in', { src: 'a', dest: 'a' }],
    ['a=b', '--in', { src: 'a', dest: 'b' }],
    ['a==b', '--in', { src: 'a', dest: '=b' }],
    // A directory as a shell completes it is that directory on both sides...
    ['assets/', '--in', { src: 'assets/', dest: 'assets' }],
    ['assets//', '--in', { src: 'assets//', dest: 'assets' }],
    ['/', '--in', { src: '/', dest: '/' }],
    // ...but an --out's "/" says the output is a directory, and a DEST written with "/" keeps it.
    ['frames/', '--out', { src: 'frames/', dest: 'frames/' }],
    ['a=b/', '--in', { src: 'a', dest: 'b/' }],
  ])('%j (%s) is %j', (spec, option, parts) => {
    expect(splitCopySpec(spec, option)).toEqual(parts);
  });

  it.each(['', '=b', 'a=', '='])('refuses %j, saying the form it expects', (spec) => {
    expect(() => splitCopySpec(spec, '--in')).toThrow(`--in "${spec}": expected SRC or SRC=DEST`);
  });
});
