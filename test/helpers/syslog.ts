import { sleep } from './consume.js'
import { readStream, type TestServer } from './server.js'

export const syslogPipeline = `
exchanges:
  logs: { type: topic }
streams: { syslog: {} }
bindings:
  - { exchange: logs, stream: syslog, key: "syslog.#" }
`

export const tcpPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'syslog')!.port
export const udpPort = (s: TestServer): number => s.server.listeners.find((l) => l.options.name === 'syslog-udp')!.port

export async function allEvents(url: string, stream: string): Promise<Array<{ body: Record<string, unknown>; routingKey: string }>> {
  const out: Array<{ body: Record<string, unknown>; routingKey: string }> = []
  for (let from = 0; ; ) {
    const page = await readStream(url, stream, from, 10_000)
    if (page.events.length === 0) return out
    out.push(...(page.events as unknown as Array<{ body: Record<string, unknown>; routingKey: string }>))
    from = page.nextOffset
  }
}

export async function waitCount(url: string, stream: string, n: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let count = 0
  while (Date.now() < deadline) {
    count = ((await (await fetch(`${url}/v1/streams/${stream}`)).json()) as { events: number }).events
    if (count >= n) return count
    await sleep(50)
  }
  return count
}

