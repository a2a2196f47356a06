import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and cluster tests spawn child processes and spend much of their time waiting on them
    // (fsyncs, leases, restarts): a third file beside two cores' worth keeps the cores busy while
    // one waits (vitest took 257-280 s with two and 217-252 s with three, this machine). More would put CPU-bound files on top of
    // each other.
    maxWorkers: 3,
    minWorkers: 1,
  },
})
