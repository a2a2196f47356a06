// The fault-schedule checker (test/helpers/chaos.ts) on a replicated three-node cluster: a short
// seeded schedule here; `npm run soak:cluster` runs long ones (SLUICE_SOAK_FAULTS, SLUICE_SOAK_SEED).
// A failing run prints its seed: SLUICE_SOAK_SEED=<seed> replays the same schedule.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runChaos } from '../helpers/chaos.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'

const faults = Number(process.env.SLUICE_SOAK_FAULTS ?? 4)
const seed = Number(process.env.SLUICE_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
const leaseTtlMs = 2000

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}exchanges:
  logs: { type: direct, dedup: id }
streams:
  s1: { segmentSize: 1mb }
bindings:
  - { exchange: logs, stream: s1, key: a }
groups:
  g1: { stream: s1, ackTimeout: 60s }
`

describe('replicated cluster under a fault schedule', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startTestCluster({ ids: ['n1', 'n2', 'n3'], yaml, leaseTtlMs, perNodeProxies: true, replication: () => 'factor: 3, minInSync: 2, replicaLagMax: 1s' })
    await cluster.settled(1)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it(`loses no confirmed event, stores none twice, keeps order and acks (seed ${seed}, ${faults} faults)`, async () => {
    const report = await runChaos(cluster, { seed, faults, stream: 's1', group: 'g1', exchange: 'logs', routingKey: 'a', leaseTtlMs, log: (line) => process.stdout.write(`[chaos seed ${seed}] ${line}\n`) })
    process.stdout.write(`[chaos seed ${seed}] ${JSON.stringify({ faults: report.faults.length, attempted: report.attempted, confirmed: report.confirmed, stored: report.stored, refusedAnswers: report.refusedAnswers, lost: report.lost.length, duplicated: report.duplicated.length })}\n`)
    expect(report.confirmed).toBeGreaterThan(0)
    expect({ seed, lost: report.lost.slice(0, 20), duplicated: report.duplicated.slice(0, 20), outOfOrder: report.outOfOrder.slice(0, 20), deliveredAfterAck: report.deliveredAfterAck.slice(0, 20), neverDelivered: report.neverDelivered.slice(0, 20), replicaMismatch: report.replicaMismatch }).toEqual({
      seed,
      lost: [],
      duplicated: [],
      outOfOrder: [],
      deliveredAfterAck: [],
      neverDelivered: [],
      replicaMismatch: [],
    })
  }, 60_000 + faults * 15_000)
})
