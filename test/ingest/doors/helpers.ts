import { readStream, startTestServer, type TestServer } from '../../helpers/server.js'

/** The three HTTP doors on, publishing to the test pipeline's `logs` exchange. */
export const doorsOn = `  otlp: { exchange: logs }
  loki: { exchange: logs }
  elasticsearch: { exchange: logs }`

export async function startDoors(opts: { server?: string; pipeline?: string } = {}): Promise<TestServer> {
  return startTestServer({ ...opts, server: `${doorsOn}\n${opts.server ?? ''}` })
}

export interface StoredEvent<B = Record<string, unknown>> {
  readonly offset: number
  readonly routingKey: string
  readonly id: string | null
  readonly body: B
}

/** Every event of a stream, read page by page. */
export async function readAll<B = Record<string, unknown>>(url: string, stream: string): Promise<StoredEvent<B>[]> {
  const out: StoredEvent<B>[] = []
  let from = 0
  for (;;) {
    const page = await readStream(url, stream, from, 10_000)
    out.push(...(page.events as unknown as StoredEvent<B>[]))
    if (page.events.length === 0 || page.nextOffset === from) return out
    from = page.nextOffset
  }
}

/** Polls until the stream holds `n` events or the deadline passes; returns them. */
export async function waitForEvents<B = Record<string, unknown>>(url: string, stream: string, n: number, ms = 10_000): Promise<StoredEvent<B>[]> {
  const deadline = Date.now() + ms
  for (;;) {
    const events = await readAll<B>(url, stream)
    if (events.length >= n || Date.now() > deadline) return events
    await new Promise((r) => setTimeout(r, 50))
  }
}
