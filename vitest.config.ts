import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash tests spawn child processes and fsync; two cores cannot take many files at once.
    maxWorkers: 2,
    minWorkers: 1,
  },
})
