import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start their own sshd farms on free ports; running files in
    // parallel on a 2-core CI machine only adds noise to the timing-sensitive ones.
    fileParallelism: false,
  },
});
