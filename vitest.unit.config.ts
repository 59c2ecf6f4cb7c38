import { defineConfig } from 'vitest/config';

// The in-process tests alone (test/unit), for mutation testing (`npm run mutate`,
// stryker.config.json): the integration tests start sshd and run the built CLI,
// which neither sees a mutant nor fits in a run per mutant.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    // Sends SIGHUP to its own process: Stryker runs tests in worker threads, where
    // the handler is not the process's, and the signal would end Stryker's runner.
    // It tests the inventory's reloading, none of the code under mutation.
    exclude: ['test/unit/execute/liveInventory.test.ts'],
    // Only ends a test that truly hangs; Stryker's own timeout ends a mutant that loops.
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
