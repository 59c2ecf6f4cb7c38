/**
 * What a run opened, closed on every path, an exception included: each
 * resource registers its closing step as soon as it is opened, and the steps
 * run in reverse order (Playwright's task runner is the model). A step that
 * fails does not keep the others from running.
 */
export class Teardown {
  private readonly steps: Array<() => unknown> = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** Runs every step, last added first; returns the errors they threw. */
  async run(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }
}
