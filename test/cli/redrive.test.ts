import { beforeAll, describe, expect, it } from 'vitest'
import { fetchEvents, nack } from '../helpers/consume.js'
import { publish, waitFor } from '../helpers/groups.js'
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

describe('sluice redrive', () => {
  beforeAll(requireBuiltCli)

  it('`sluice redrive` of a stream without dead letters is refused; of the dead-letter stream, it sends each event once', async () => {
    const { url } = await startTestServer({ pipeline })
    await publish(url, 'logs', [{ service: 'api', level: 'info', n: 1 }])
    const refused = await runCli(['redrive', 'app-logs', '--url', url])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe(
      'sluice redrive: 409 not_dead_letters: stream "app-logs" holds no dead-lettered events (none carries x-death) and no group dead-letters into it; redrive takes a dead-letter stream, such as a group\'s deadLetter.stream\n',
    )

    const [d] = await fetchEvents(url, 'indexer', 'c1', 10)
    await nack(url, 'indexer', [d!.tag], { requeue: false })
    await waitFor('the dead letter', async () => ((await readStream(url, 'app-logs-dlq')).events.length === 1 ? true : undefined))
    const first = await runCli(['redrive', 'app-logs-dlq', '--url', url])
    expect([first.code, first.stdout]).toEqual([0, '{"redriven":1,"skipped":0,"remaining":false}\n'])
    const second = await runCli(['redrive', 'app-logs-dlq', '--url', url])
    expect([second.code, second.stdout]).toEqual([0, '{"redriven":0,"skipped":0,"remaining":false}\n'])
    // The copy in app-logs is not taken for a dead letter either.
    expect((await runCli(['redrive', 'app-logs', '--url', url])).code).toBe(1)
    expect((await readStream(url, 'app-logs')).events).toHaveLength(2)
  })
})
