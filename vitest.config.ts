import { relative } from 'node:path'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The slowest files, slowest first (fresh-clone CI on the 2-core machine, 2026-12-04). A fresh
 * clone has no timings cached, and vitest then starts the largest files first: a slow small file
 * started last kept one worker busy for a minute after the others were done. Files not listed
 * follow in vitest's own order; a renamed file only loses its place.
 */
const slowFirst = [
  'test/cluster/replication.test.ts',
  'test/consumers/simulation.test.ts',
  'test/cli/cli.test.ts',
  'test/ui/pages.test.ts',
  'test/cli/cli-serve.test.ts',
  'test/ingest/publish-suite.test.ts',
  'test/ingest/amqp-celery.test.ts',
  'test/cluster/chaos.test.ts',
  'test/cluster/move.test.ts',
  'test/ingest/doors-tls.test.ts',
  'test/consumers/crash.test.ts',
  'test/log/crash.test.ts',
  'test/flow/flow.test.ts',
  'test/ingest/tls.test.ts',
  'test/cluster/forwarding.test.ts',
  'test/ingest/forward.test.ts',
  'test/ingest/amqp-close.test.ts',
  'test/ingest/amqp-auth.test.ts',
  'test/ingest/amqp-crash.test.ts',
  'test/cluster/membership.test.ts',
  'test/fuzz/http.test.ts',
  'test/ingest/http-crash.test.ts',
  'test/cluster/definitions.test.ts',
  'test/server/shutdown.test.ts',
  'test/ingest/http/limits.test.ts',
  'test/cluster/amqp-proxy.test.ts',
  'test/ingest/amqp-connection.test.ts',
  'test/consumers/clamp.test.ts',
  'test/consumers/redelivery.test.ts',
  'test/scripts/build-if-stale.test.ts',
]

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const rank = (f: TestSpecification): number => {
      const i = slowFirst.indexOf(relative(process.cwd(), f.moduleId))
      return i < 0 ? slowFirst.length : i
    }
    // Stable: the unlisted keep vitest's order among themselves.
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f)
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and cluster tests spawn child processes and spend much of their time waiting on them
    // (fsyncs, leases, restarts): files beyond two cores' worth keep the cores busy while one
    // waits. On the machine of 2026-12-03 vitest took 257-280 s with two, 217-252 s with three,
    // and, with the replication and fault-schedule tests added, 262-270 s with three and 236 s
    // with four. On the VM of 2026-12-04 a fresh clone took 369 s with four, CPU-bound (load 7-9).
    maxWorkers: 4,
    minWorkers: 1,
    sequence: { sequencer: SlowFirstSequencer },
  },
})
