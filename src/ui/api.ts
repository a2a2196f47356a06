// The UI's one way to the server: the public /v1 API, with the credentials the person typed.
// They are kept in sessionStorage (gone when the tab closes), never in a cookie, so no other site
// can make the browser send them (no CSRF), and the server stays the one place that decides.

const authKey = 'sluice.authorization'

export function savedAuthorization(): string | null {
  return sessionStorage.getItem(authKey)
}

export function saveAuthorization(value: string | null): void {
  if (value === null) sessionStorage.removeItem(authKey)
  else sessionStorage.setItem(authKey, value)
}

/** `Basic` for a user and password, `Bearer` for an API key. */
export function authorizationFor(user: string, secret: string, kind: 'password' | 'apiKey'): string {
  if (kind === 'apiKey') return `Bearer ${secret}`
  const bytes = new TextEncoder().encode(`${user}:${secret}`)
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return `Basic ${btoa(bin)}`
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface Request {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly body?: unknown
  /** A body sent as it is (a YAML document), instead of `body` as JSON. */
  readonly text?: { readonly type: string; readonly value: string }
  readonly signal?: AbortSignal
}

function headers(contentType: string | undefined): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' }
  const auth = savedAuthorization()
  if (auth !== null) h.authorization = auth
  if (contentType !== undefined) h['content-type'] = contentType
  return h
}

export async function api<T>(path: string, req: Request = {}): Promise<T> {
  const text = await apiText(path, req)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/** The answer's text, for the routes that answer something other than JSON (YAML). */
export async function apiText(path: string, req: Request = {}): Promise<string> {
  const type = req.text !== undefined ? req.text.type : req.body !== undefined ? 'application/json' : undefined
  const init: RequestInit = { method: req.method ?? 'GET', headers: headers(type), credentials: 'omit' }
  if (req.text !== undefined) init.body = req.text.value
  else if (req.body !== undefined) init.body = JSON.stringify(req.body)
  if (req.signal !== undefined) init.signal = req.signal
  const res = await fetch(path, init)
  const text = await res.text()
  if (!res.ok) {
    let code = String(res.status)
    let message = text
    try {
      const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error
      code = e?.code ?? code
      message = e?.message ?? message
    } catch {
      // Not the error shape (a proxy's page): show the text as it is.
    }
    throw new ApiError(res.status, code, message)
  }
  return text
}

export const enc = encodeURIComponent

/**
 * Server-sent events read through fetch, not EventSource: EventSource cannot send an
 * Authorization header, and the UI logs in with one.
 */
export async function readEvents(path: string, onEvent: (data: string) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(path, { headers: { ...headers(undefined), accept: 'text/event-stream' }, signal, credentials: 'omit' })
  if (!res.ok || res.body === null) {
    const text = await res.text()
    let message = text
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message
    } catch {
      // keep the text
    }
    throw new ApiError(res.status, String(res.status), message)
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffered = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffered += value
    let end: number
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n')
      if (data !== '') onEvent(data)
    }
  }
}

// ---- the shapes the API answers (docs/http-api.md) ---------------------------------------------

export interface Who {
  username: string
  tags: string[]
  method: string
  patterns: { configure: string | null; write: string | null; read: string | null }
}

export interface ListenerCounters {
  connections: number
  connectionsTotal: number
  messages: number
  bytes: number
  parseErrors: number
}

export interface Overview {
  version: string
  dataDir: string
  uptimeSeconds: number
  exchanges: number
  streams: number
  events: number
  bytes: number
  groups: number
  publish: { requests: number; events: number; accepted: number; duplicates: number; unroutable: number; rejected: number }
  listeners: Record<string, ListenerCounters>
  ingestErrors: { recorded: number; dropped: number }
  alarms: Array<{ name: string; since: number; value: number; limit: number }>
  rateLimited: Record<string, number>
  disk: { freeBytes: number; totalBytes: number; limitBytes: number } | null
}

export interface Rates {
  intervalMs: number
  historyMs: number
  totals: { ingest: number; delivered: number }
  times: number[]
  ingest: number[]
  delivered: number[]
}

export interface Binding {
  stream?: string
  toExchange?: string
  key: string
  match?: string
  headers?: Record<string, unknown>
}

export interface Exchange {
  name: string
  type: string
  routingKey: string | null
  alternate: string | null
  unroutable: string
  bindings: Binding[]
}

export interface RouteAnswer {
  exchange: string
  routingKey: string
  streams: string[]
  unroutable: boolean
  policy?: string
}

export interface Stream {
  name: string
  events: number
  bytes: number
  segments: number
  firstOffset: number
  lastOffset: number
  nextOffset: number
  oldestTimestamp: string | null
  newestTimestamp: string | null
  appendRatePerSec: number
  fsync: string
  retention: Record<string, unknown>
}

export interface WireEvent {
  offset: number
  timestamp: string
  routingKey: string
  exchange: string | null
  id: string | null
  headers: Record<string, unknown>
  body: unknown
  bodyEncoding?: string
}

export interface SearchPage {
  events: WireEvent[]
  nextOffset: number
  scanned: number
  complete: boolean
  startOffset: number
  endOffset: number
}

export interface Member {
  name: string
  inFlight: number
  assigned: number
  credit: number
  lastSeen: string
}

export interface Group {
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
  members: Member[]
  config?: { deadLetter?: { kind: string; stream?: string; exchange?: string } | null } & Record<string, unknown>
}

export interface DeadLetterSummary {
  matching: number
  noExchange: number
  byReason: Record<string, number>
  byOrigin: Array<{ group: string; stream: string; exchange: string | null; count: number }>
  otherOrigins: number
  scanned: number
  complete: boolean
}

export interface DefinitionChange {
  kind: 'exchange' | 'stream' | 'binding' | 'group'
  name: string
  action: 'create' | 'unchanged'
}

export interface ImportAnswer {
  applied: boolean
  changes: DefinitionChange[]
  conflicts: Array<{ kind: string; name: string; message: string }>
}

export interface User {
  username: string
  tags: string[]
  loopbackOnly: boolean
  permissions: { configure: string | null; write: string | null; read: string | null }
  patterns: { configure: string | null; write: string | null; read: string | null }
  apiKeys: string[]
}

export interface Lag {
  group: string
  intervalMs: number
  historyMs: number
  tracked: boolean
  now: { backlog: number; lagSeconds: number }
  times: number[]
  backlog: number[]
  lagSeconds: number[]
}
