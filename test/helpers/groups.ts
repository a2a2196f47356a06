import { call, sleep } from './consume.js'
import { postNdjson } from './server.js'

/** GET /v1/groups/{group}, as the tests read it. */
export interface WireGroupStats {
  name: string
  stream: string
  cursor: number
  backlog: number
  lagSeconds: number
  inFlight: number
  delivered: number
  acked: number
  nacked: number
  redelivered: number
  ackTimeouts: number
  deadLettered: Record<string, number>
  parked: number
  members: Array<{ name: string; inFlight: number; assigned: number; credit: number; lastSeen: string }>
  config?: Record<string, unknown>
}

export interface WireDeath {
  reason: string
  stream: string
  group: string
  exchange: string | null
  routingKey: string
  count: number
  time: string
  error?: string
}

/** Publishes bodies as NDJSON and insists on a 200; returns the answer. */
export async function publish(url: string, exchange: string, bodies: readonly unknown[], routingKey?: string): Promise<{ accepted: number; duplicates: number; unroutable: number }> {
  const res = await postNdjson(url, exchange, bodies, routingKey === undefined ? {} : { 'x-routing-key': routingKey })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`publish to ${exchange}: ${res.status} ${text}`)
  return JSON.parse(text) as { accepted: number; duplicates: number; unroutable: number }
}

export async function groupStats(url: string, group: string): Promise<WireGroupStats> {
  const r = await call<WireGroupStats>(url, 'GET', `/v1/groups/${group}`)
  if (r.status !== 200) throw new Error(`stats ${group}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
