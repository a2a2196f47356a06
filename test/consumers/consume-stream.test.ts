import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { call, fetchEvents, type WireDelivery } from '../helpers/consume.js'
import { postNdjson, startTestServer, testPipeline } from '../helpers/server.js'

// GET /v1/groups/{g}/consume: a push consumer over HTTP. Deliveries stream as NDJSON lines up to
// prefetch unacked; acks let more through; closing the stream gives back what it held.

const pipeline = `${testPipeline}
groups:
  work: { stream: app-logs, prefetch: 100 }
`

/** Opens a consume stream and hands over each delivery as its line arrives. */
function openStream(url: string, query: string, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string; next: (n: number) => Promise<WireDelivery[]>; raw: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const sse = headers.accept === 'text/event-stream'
    const req = request(`${url}/v1/groups/work/consume?${query}`, { headers }, (res) => {
      let buf = ''
      let text = ''
      const got: WireDelivery[] = []
      let want: { n: number; resolve: (ds: WireDelivery[]) => void } | undefined
      const check = (): void => {
        if (want !== undefined && got.length >= want.n) {
          const w = want
          want = undefined
          w.resolve(got.splice(0, w.n))
        }
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        buf += chunk
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (line.trim() !== '' && !sse) got.push(JSON.parse(line) as WireDelivery)
        }
        check()
      })
      res.on('error', () => undefined)
      resolve({
        status: res.statusCode ?? 0,
        contentType: String(res.headers['content-type']),
        next: (n) =>
          new Promise((r, j) => {
            want = { n, resolve: r }
            setTimeout(() => j(new Error(`waited for ${n} deliveries, have ${got.length}`)), 10_000).unref()
            check()
          }),
        raw: () => text,
        close: () => req.destroy(),
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const ns = (ds: WireDelivery[]): number[] => ds.map((d) => (d.body as { n: number }).n)
const stats = async (url: string): Promise<{ cursor: number; inFlight: number }> => (await call<{ cursor: number; inFlight: number }>(url, 'GET', '/v1/groups/work')).body

describe('GET /v1/groups/{group}/consume', () => {
  it('streams deliveries in order up to prefetch, more as they are acked, and gives back what it held when closed', async () => {
    const s = await startTestServer({ pipeline })
    expect((await postNdjson(s.url, 'logs', Array.from({ length: 25 }, (_, n) => ({ service: 'web', level: 'info', n })))).status).toBe(200)
    const st = await openStream(s.url, 'consumer=pusher&prefetch=10')
    expect(st.status).toBe(200)
    expect(st.contentType).toBe('application/x-ndjson')
    const first = await st.next(10)
    expect(ns(first)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    // Credit spent: nothing more until an ack.
    await new Promise((r) => setTimeout(r, 200))
    expect((await stats(s.url)).inFlight).toBe(10)
    expect((await call(s.url, 'POST', '/v1/groups/work/ack', { ranges: [[first[0]!.tag, first[9]!.tag]] })).body).toEqual({ settled: 10, failed: [] })
    const second = await st.next(10)
    expect(ns(second)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    // A member has one receiver: another stream or a fetch under its name is refused.
    const again = await call<{ error: { code: string } }>(s.url, 'GET', '/v1/groups/work/consume?consumer=pusher')
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe('consumer_in_use')
    // Events published while it streams arrive as well, once there is credit.
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', n: 25 }])).status).toBe(200)
    expect((await call(s.url, 'POST', '/v1/groups/work/ack', { upTo: second[4]!.tag })).body).toEqual({ settled: 5, failed: [] })
    expect(ns(await st.next(5))).toEqual([20, 21, 22, 23, 24])
    // upTo the second batch's last: 15..19, not 20..24, which were delivered after it.
    expect((await call(s.url, 'POST', '/v1/groups/work/ack', { upTo: second[9]!.tag })).body).toEqual({ settled: 5, failed: [] })
    expect(ns(await st.next(1))).toEqual([25])
    // Closing gives back 20..25 (unacked) at once: a fetch gets them, redelivered.
    st.close()
    let back: WireDelivery[] = []
    for (let i = 0; i < 50 && back.length < 6; i++) {
      back = back.concat(await fetchEvents(s.url, 'work', 'fetcher', 100, 200))
    }
    expect(ns(back).sort((a, b) => a - b)).toEqual([20, 21, 22, 23, 24, 25])
    expect(back.every((d) => d.redelivered && d.deliveryCount === 2)).toBe(true)
    expect((await call(s.url, 'POST', '/v1/groups/work/ack', { tags: back.map((d) => d.tag) })).body).toMatchObject({ settled: 6 })
    expect(await stats(s.url)).toMatchObject({ cursor: 26, inFlight: 0 })
  })

  it('speaks server-sent events when asked, and refuses bad parameters with 400', async () => {
    const s = await startTestServer({ pipeline })
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', n: 0 }])).status).toBe(200)
    for (const q of ['', 'consumer=a%20b', 'consumer=c&prefetch=0', 'consumer=c&prefetch=x', 'consumer=c&format=xml', 'consumer=c&prefetch=99999999']) {
      expect((await call(s.url, 'GET', `/v1/groups/work/consume?${q}`)).status, q).toBe(400)
    }
    const st = await openStream(s.url, 'consumer=sse-reader', { accept: 'text/event-stream' })
    expect(st.contentType).toBe('text/event-stream; charset=utf-8')
    for (let i = 0; i < 100 && !st.raw().includes('\n\n'); i++) await new Promise((r) => setTimeout(r, 20))
    const m = /^event: delivery\ndata: (.+)\n\n$/.exec(st.raw())
    expect(m).not.toBeNull()
    expect((JSON.parse(m![1]!) as WireDelivery).body).toEqual({ service: 'web', level: 'info', n: 0 })
    st.close()
  })

  it('answers with its headers at once, before any delivery, so a client may start publishing only once it is consuming', async () => {
    const s = await startTestServer({ pipeline })
    const t0 = performance.now()
    // The group is empty: nothing but the headers can come, and they must not wait for a delivery or the 15 s heartbeat.
    const st = await openStream(s.url, 'consumer=early')
    expect(st.status).toBe(200)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect((await postNdjson(s.url, 'logs', [{ service: 'web', level: 'info', n: 7 }])).status).toBe(200)
    expect(ns(await st.next(1))).toEqual([7])
    st.close()
  })
})
