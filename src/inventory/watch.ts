import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** Edits come in bursts (an editor truncates, writes, renames): one reading after the burst. */
export const INVENTORY_DEBOUNCE_MS = 250;

/**
 * Calls `changed` when the inventory file changes on disk, once per burst of
 * changes, and on SIGHUP. The directory is watched, not the file: an editor
 * that saves by writing a new file and renaming it over the old one would
 * leave a watch on the file looking at a file that is gone. Calls never
 * overlap: a change during one is handled after it.
 */
export class InventoryWatcher {
  private watcher: FSWatcher | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private busy: Promise<void> | undefined;
  private again = false;
  private readonly onHup = (): void => this.trigger('SIGHUP');
  private lastWhy = 'changed';

  constructor(
    private readonly file: string,
    private readonly changed: (why: string) => Promise<void>,
    private readonly debounceMs = INVENTORY_DEBOUNCE_MS,
  ) {}

  start(): void {
    const path = resolve(this.file);
    const name = basename(path);
    try {
      this.watcher = watch(dirname(path), (_event, file) => {
        if (file === null || file === name) this.schedule('changed');
      });
      // A watch that fails later (the directory removed) leaves SIGHUP working.
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // A file system without change notices: SIGHUP still re-reads the file.
    }
    process.on('SIGHUP', this.onHup);
  }

  /** No more readings; one under way finishes. */
  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.timer);
    process.off('SIGHUP', this.onHup);
    await this.busy;
  }

  private schedule(why: string): void {
    if (this.watcher === undefined) return;
    this.lastWhy = why;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.trigger(this.lastWhy), this.debounceMs);
  }

  private trigger(why: string): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = this.changed(why)
      .catch(() => {})
      .finally(() => {
        this.busy = undefined;
        if (this.again) {
          this.again = false;
          this.trigger(why);
        }
      });
  }
}
