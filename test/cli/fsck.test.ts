import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { publish } from '../helpers/groups.js'
import { readStream, startTestServer } from '../helpers/server.js'
import { requireBuiltCli, runCli } from '../helpers/cli.js'

const pipeline = `
exchanges:
  logs: { type: topic, routingKey: "{service}.{level}" }
streams: { app-logs: {}, app-logs-dlq: {} }
bindings:
  - { exchange: logs, stream: app-logs, key: "#" }
groups:
  indexer: { stream: app-logs, maxDeliveries: 1, deadLetter: { stream: app-logs-dlq } }
`

describe('sluice fsck', () => {
  beforeAll(requireBuiltCli)

  it('`sluice fsck --repair` refuses a data dir a running server holds, and repairs once it has stopped', async () => {
    const s = await startTestServer({ pipeline })
    await publish(s.url, 'logs', [{ service: 'api', level: 'info' }])
    const hint = 'stop the server first; without --repair, fsck only reads\n'
    for (const dir of [s.dataDir, join(s.dataDir, 'streams', 'app-logs')]) {
      const refused = await runCli(['fsck', dir, '--repair'])
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([1, '', `sluice fsck: refusing to repair ${s.dataDir}: a running server holds it (its metadata store is locked)\n${hint}`])
    }
    // Reading needs no lock.
    const checked = await runCli(['fsck', s.dataDir])
    expect(checked.code).toBe(0)
    expect(checked.stdout).toMatch(/fsck: ok\n$/)
    await s.stop()
    const repaired = await runCli(['fsck', s.dataDir, '--repair'])
    expect([repaired.code, repaired.stderr]).toEqual([0, ''])
    expect(repaired.stdout).toMatch(/fsck: ok\n$/)
    // The lock was let go: the server starts on it again.
    const again = await startTestServer({ pipeline, dataDir: s.dataDir })
    expect((await readStream(again.url, 'app-logs')).events).toHaveLength(1)
  })
})
