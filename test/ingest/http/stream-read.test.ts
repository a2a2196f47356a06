import { describe, expect, it } from 'vitest'
import { publish } from '../../helpers/groups.js'
import { startTestServer } from '../../helpers/server.js'

const read = async (url: string, query: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await fetch(`${url}/v1/streams/app-logs/events?${query}`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('GET /v1/streams/{stream}/events: where a read starts', () => {
  it('`from` past the end is 416 log_offset_out_of_range; the end itself is an empty read', async () => {
    const { url } = await startTestServer()
    await publish(url, 'logs', [0, 1, 2].map((i) => ({ service: 'api', level: 'info', i })))
    expect(await read(url, 'from=3')).toMatchObject({ status: 200, body: { events: [], nextOffset: 3, endOffset: 3 } })
    expect(await read(url, 'from=4')).toEqual({
      status: 416,
      body: { error: { code: 'log_offset_out_of_range', message: 'offset 4 is outside the log [0, 3)', details: { offset: 4, start: 0, end: 3 } } },
    })
    // Even when asked to wait: a stale offset is answered at once, not after waitMs.
    const t0 = Date.now()
    expect((await read(url, 'from=99&waitMs=5000')).status).toBe(416)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('a negative `from` is 400, not a read from the start', async () => {
    const { url } = await startTestServer()
    await publish(url, 'logs', [{ service: 'api', level: 'info' }])
    expect(await read(url, 'from=-1')).toEqual({
      status: 400,
      body: { error: { code: 'bad_request', message: "from -1 is negative; offsets start at 0 (the stream's first is 0)", details: { from: '-1' } } },
    })
  })
})
