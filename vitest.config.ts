import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and cluster tests spawn child processes and spend much of their time waiting on them
    // (fsyncs, leases, restarts): files beyond two cores' worth keep the cores busy while one
    // waits. On this machine vitest took 257-280 s with two, 217-252 s with three, and, with the
    // replication and fault-schedule tests added, 262-270 s with three and 236 s with four.
    maxWorkers: 4,
    minWorkers: 1,
  },
})
