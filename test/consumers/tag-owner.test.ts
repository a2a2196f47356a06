import { describe, expect, it } from 'vitest'
import { postNdjson, startTestServer, testPipeline } from '../helpers/server.js'

// A delivery belongs to the member (and the user) it went to: a guessed tag, another member's
// settlement or another user's is refused tag by tag with not_yours, as RabbitMQ refuses a
// delivery tag from another channel.

const pipeline = `${testPipeline}
groups:
  work: { stream: app-logs }
`
const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

interface Settled {
  settled: number
  failed: Array<{ tag: string; code: string }>
}

async function post<T>(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: res.status, body: (await res.json()) as T }
}

const fetchAs = async (url: string, consumer: string, max: number, headers: Record<string, string> = {}): Promise<string[]> => {
  const r = await post<{ events: Array<{ tag: string }> }>(url, '/v1/groups/work/fetch', { consumer, max }, headers)
  expect(r.status).toBe(200)
  return r.body.events.map((e) => e.tag)
}

describe('delivery tags belong to their consumer', () => {
  it('a guessed tag and another member settle nothing; the member that holds it does', async () => {
    const s = await startTestServer({ pipeline })
    expect((await postNdjson(s.url, 'logs', [1, 2, 3].map((n) => ({ service: 'web', level: 'info', n })))).status).toBe(200)
    const tags = await fetchAs(s.url, 'alice', 3)
    expect(tags).toHaveLength(3)
    // generation-offset-count, then the member's secret: unguessable.
    for (const t of tags) expect(t).toMatch(/^\d+-\d+-1-[A-Za-z0-9_-]{8}$/)
    const guessed = tags.map((t) => t.split('-').slice(0, 3).join('-'))
    const g = await post<Settled>(s.url, '/v1/groups/work/ack', { tags: guessed })
    expect(g.body).toEqual({ settled: 0, failed: guessed.map((tag) => ({ tag, code: 'not_yours', message: expect.any(String) })) })
    const forged = tags.map((t) => t.replace(/-[^-]+$/, '-AAAAAAAA'))
    expect((await post<Settled>(s.url, '/v1/groups/work/nack', { tags: forged, requeue: true })).body.settled).toBe(0)
    // The real tag, but the body says another consumer sends it.
    const other = await post<Settled>(s.url, '/v1/groups/work/ack', { tags: [tags[0]], consumer: 'bob' })
    expect(other.body.failed.map((f) => f.code)).toEqual(['not_yours'])
    expect((await post<Settled>(s.url, '/v1/groups/work/extend', { tags: [tags[1]], consumer: 'bob' })).body.failed.map((f) => f.code)).toEqual(['not_yours'])
    // Nothing was settled or requeued by them: bob gets nothing, alice settles all three.
    expect(await fetchAs(s.url, 'bob', 10)).toEqual([])
    expect((await post<Settled>(s.url, '/v1/groups/work/ack', { tags, consumer: 'alice' })).body).toEqual({ settled: 3, failed: [] })
  })

  it("another user's ack is not_yours; an administrator may settle on the member's behalf; a member name is one user's", async () => {
    const s = await startTestServer({
      pipeline: `${pipeline}
auth:
  anonymous: none
  users:
    - { username: admin, password: admin-pw, tags: [administrator] }
    - { username: alice, password: alice-pw, permissions: { read: "^(app-logs|work)$", write: "^logs$" } }
    - { username: bob, password: bob-pw, permissions: { read: "^(app-logs|work)$" } }
`,
    })
    const alice = basic('alice', 'alice-pw')
    const bob = basic('bob', 'bob-pw')
    expect((await postNdjson(s.url, 'logs', [1, 2].map((n) => ({ service: 'web', level: 'info', n })), alice)).status).toBe(200)
    const tags = await fetchAs(s.url, 'w1', 2, alice)
    expect(tags).toHaveLength(2)
    // bob has the tags (say, from a shared log), and read permission on the group: still not his.
    expect((await post<Settled>(s.url, '/v1/groups/work/ack', { tags }, bob)).body.failed.map((f) => f.code)).toEqual(['not_yours', 'not_yours'])
    // Nor may he fetch as alice's member, which would hand him its secret.
    const taken = await post<{ error: { code: string } }>(s.url, '/v1/groups/work/fetch', { consumer: 'w1', max: 1 }, bob)
    expect(taken.status).toBe(409)
    expect(taken.body.error.code).toBe('consumer_in_use')
    expect((await post<Settled>(s.url, '/v1/groups/work/ack', { tags: [tags[0]] }, basic('admin', 'admin-pw'))).body).toEqual({ settled: 1, failed: [] })
    expect((await post<Settled>(s.url, '/v1/groups/work/ack', { tags: [tags[1]] }, alice)).body).toEqual({ settled: 1, failed: [] })
  })
})
