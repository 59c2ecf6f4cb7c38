import { readFileSync } from 'node:fs';

/**
 * The page's files ship in the package: src/ui/assets, copied to dist/ui/assets
 * by the build. The URL resolves alike from dist/ui (the modules) and
 * dist/cli (the bundle), and from src/ui under the tests.
 */
const ASSETS = new URL('../ui/assets/', import.meta.url);

export const ASSET_TYPES = {
  'page.html': 'text/html; charset=utf-8',
  'page.css': 'text/css; charset=utf-8',
  'page.js': 'text/javascript; charset=utf-8',
} as const;

export type AssetName = keyof typeof ASSET_TYPES;

const loaded = new Map<AssetName, string>();

export function asset(name: AssetName): string {
  let text = loaded.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, ASSETS), 'utf8');
    loaded.set(name, text);
  }
  return text;
}
