export interface WireDelivery {
  tag: string
  id: string
  stream: string
  offset: number
  deliveryCount: number
  redelivered: boolean
  routingKey: string
  timestamp: string
  headers: Record<string, unknown>
  body: unknown
}

export async function call<T = Record<string, unknown>>(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: (text.length > 0 ? JSON.parse(text) : {}) as T }
}

export async function fetchEvents(url: string, group: string, consumer: string, max = 100, waitMs = 0): Promise<WireDelivery[]> {
  const r = await call<{ events: WireDelivery[] }>(url, 'POST', `/v1/groups/${group}/fetch`, { consumer, max, waitMs })
  if (r.status !== 200) throw new Error(`fetch: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.events
}

export async function ack(url: string, group: string, tags: string[]): Promise<{ settled: number; failed: Array<{ tag: string; code: string }> }> {
  const r = await call<{ settled: number; failed: Array<{ tag: string; code: string }> }>(url, 'POST', `/v1/groups/${group}/ack`, { tags })
  if (r.status !== 200) throw new Error(`ack: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

export async function nack(url: string, group: string, tags: string[], opts: { requeue?: boolean; delayMs?: number; reason?: string } = {}): Promise<{ settled: number; failed: Array<{ tag: string; code: string }> }> {
  const r = await call<{ settled: number; failed: Array<{ tag: string; code: string }> }>(url, 'POST', `/v1/groups/${group}/nack`, { tags, ...opts })
  if (r.status !== 200) throw new Error(`nack: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
