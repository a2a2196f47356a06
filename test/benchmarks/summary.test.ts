import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { summaryTable } from '../../benchmarks/summary.js'
import { tempDir } from '../helpers/temp.js'

// RESULTS.md's headline table comes from the recorded results: the latest run of each benchmark,
// its medians and its verdicts, never hand-copied figures.

const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n'

describe('bench:summary', () => {
  it('takes the latest run of each file, its medians and verdicts', async () => {
    const dir = join(await tempDir(), 'results')
    mkdirSync(dir)
    const row = (median: number) => ({ workload: 'w2lean', label: 'W2 lean', unit: 'acked events/s', js: { median: 100, min: 90, max: 110 }, sl: { median, min: median, max: median }, ratio: median / 100, target: 'ratio ≥ 1.50', pass: median >= 150, slCpuUsPerEvent: 4.04 })
    writeFileSync(
      join(dir, 'compare.jsonl'),
      jsonl([
        { kind: 'summary', runId: '2026-12-01T10:00:00.000Z', rows: [row(120)] },
        { kind: 'run', workload: 'w2lean' },
        // A row beside the targets: its pass (undefined) is left out of the JSON.
        {
          kind: 'summary',
          runId: '2026-12-02T11:30:00.000Z',
          rows: [
            // The lean publishers' row: its own target (2×) and verdict, as recorded by bench:compare.
            { ...row(190), workload: 'w1lean', label: 'W1 lean publishers, 1 process', unit: 'confirmed events/s', target: 'ratio ≥ 2.00', pass: false, slCpuUsPerEvent: 2.46 },
            row(160),
            { ...row(90), workload: 'w2x1', label: 'W2 1 process', pass: undefined },
          ],
        },
      ]),
    )
    writeFileSync(
      join(dir, 'doors.jsonl'),
      jsonl([
        { at: 'A-old', door: 'HTTP NDJSON', round: 1, eventsPerSec: 1, serverCpuUsPerEvent: 1 },
        ...[1, 2, 3].flatMap((round) => [
          { at: 'B-new', door: 'HTTP NDJSON', round, eventsPerSec: 200 * round, serverCpuUsPerEvent: 4 },
          { at: 'B-new', door: 'Fluent Forward', round, eventsPerSec: [80, 90, 120][round - 1], serverCpuUsPerEvent: 11 },
        ]),
      ]),
    )
    // A later run with --only leaves Celery empty: the Celery row is the one before it.
    writeFileSync(
      join(dir, 'amqp.jsonl'),
      jsonl([
        { at: '2026-12-03T14:03:00.000Z', results: { 'sluice celery tasks': [1300, 1200, 1250], 'rmq-classic celery tasks': [2000, 1900, 1950] } },
        { at: '2026-12-04T09:00:00.000Z', results: { 'sluice celery tasks': [], 'rmq-classic celery tasks': [] } },
      ]),
    )
    const t = summaryTable(dir)
    expect(t).toContain('| compare W2 lean | 160/s, 4.0 µs/event | JetStream 100/s | ratio ≥ 1.50 | PASS (1.60) | 2026-12-02 11:30 |')
    expect(t).toContain('| compare W1 lean publishers, 1 process | 190/s, 2.5 µs/event | JetStream 100/s | ratio ≥ 2.00 | MISS (1.90) | 2026-12-02 11:30 |')
    expect(t).not.toContain('120/s')
    expect(t).toContain('| compare W2 1 process | 90/s, 4.0 µs/event | JetStream 100/s | ratio ≥ 1.50 | – | 2026-12-02 11:30 |')
    // Shares per round (0.4, 0.225, 0.2), then their median; rates are medians over rounds.
    expect(t).toContain('| doors Fluent Forward | 90/s, 11.0 µs/event | HTTP NDJSON 400/s | ≥ 50% of HTTP NDJSON | MISS (23%) | B-new |')
    expect(t).toContain('| amqp Celery tasks end to end | 1,250 tasks/s | RabbitMQ classic 1,950 | ≥ 1× RabbitMQ | MISS (0.64) | 2026-12-03 14:03 |')
    // No http or syslog results recorded: no rows for them.
    expect(t).not.toMatch(/\| http |\| syslog /)
  })
})
