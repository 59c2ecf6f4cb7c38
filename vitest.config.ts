import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Sized for a 2-core CI machine shared with other work, running at a quarter
    // of its speed: the slowest test takes about 40 s idle (keepalive's 30 s
    // plus a run). A test that waits on an event fails long before this with
    // its own message; the limit only ends a test that truly hangs.
    testTimeout: 240_000,
    hookTimeout: 240_000,
    // Integration tests start their own sshd farms on free ports; running files in
    // parallel on a 2-core CI machine only adds noise to the timing-sensitive ones.
    fileParallelism: false,
  },
});
