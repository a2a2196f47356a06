// Elasticsearch `_bulk`: NDJSON action/metadata lines, each `index` or `create` followed by its
// document. Every document becomes one event (its bytes stored as they came), routed by its index;
// the answer has one item per action, as Elasticsearch's has. docs/doors/elasticsearch.md is the
// field-by-field description; keep the two together.

import { randomBytes } from 'node:crypto'
import { errors, type SluiceError } from '../../errors.js'
import type { PublishEvent, PublishResult } from '../../streams/publisher.js'

export type BulkAction = 'index' | 'create' | 'update' | 'delete'

const actions = new Set<string>(['index', 'create', 'update', 'delete'])

/** What an item's answer says when it failed: Elasticsearch's `{type, reason}` and a status. */
export interface ItemError {
  readonly status: number
  readonly type: string
  readonly reason: string
}

export interface BulkItem {
  readonly action: BulkAction
  readonly index: string
  /** The `_id` the client gave; undefined when Sluice names one for the answer. */
  readonly id: string | undefined
  /** Set when the item failed before publishing. */
  readonly error?: ItemError | undefined
  /** Its event's place in `events`, when it has one. */
  readonly event?: number | undefined
  /** The document line, when it could not be parsed (for ingest-errors). */
  readonly raw?: Buffer | undefined
  /** 1-based line of its action, for messages. */
  readonly line: number
}

interface Action {
  readonly action: BulkAction
  readonly index: string | undefined
  readonly id: string | undefined
}

export interface Bulk {
  readonly items: BulkItem[]
  readonly events: PublishEvent[]
}

export interface BulkOptions {
  /** The index of `POST /{index}/_bulk`; an action's `_index` wins. */
  readonly defaultIndex: string | undefined
  /** Actions in one request at most (server.elasticsearch.maxDocumentsPerRequest). */
  readonly maxItems: number
}

function malformed(line: number, why: string): SluiceError {
  return errors.badRequest(`Malformed action/metadata line [${line}], ${why}`, { line })
}

const notSupported = (action: BulkAction): ItemError => ({
  status: 400,
  type: 'illegal_argument_exception',
  reason: `Sluice stores documents as events and never changes one: the ${action} action is not supported; use index or create`,
})

/**
 * Reads the body line by line. A malformed action line refuses the whole request (400), as
 * Elasticsearch does, since the lines after it can no longer be paired; a document that is not a
 * JSON object fails only its own item. Blank lines are skipped (rsyslog sends them).
 */
export function parseBulk(buf: Buffer, opts: BulkOptions): Bulk {
  const items: BulkItem[] = []
  const events: PublishEvent[] = []
  // Shippers repeat one action line for a whole batch ({"index":{"_index":"logs"}}): read it once.
  const seenActions = new Map<string, Action>()
  let start = 0
  let line = 0
  const next = (): { bytes: Buffer; line: number } | undefined => {
    while (start < buf.length) {
      let end = buf.indexOf(0x0a, start)
      if (end === -1) end = buf.length
      line++
      let stop = end
      if (stop > start && buf[stop - 1] === 0x0d) stop--
      const bytes = buf.subarray(start, stop)
      start = end + 1
      if (!isBlank(bytes)) return { bytes, line }
    }
    return undefined
  }
  for (let head = next(); head !== undefined; head = next()) {
    const at = head.line
    const text = head.bytes.toString('utf8')
    let a = seenActions.get(text)
    if (a === undefined) {
      a = readAction(text, at, opts.defaultIndex)
      if (seenActions.size < 64) seenActions.set(text, a)
    }
    const { action, index, id } = a
    if (items.length >= opts.maxItems) throw errors.tooManyRecords('_bulk', 'actions', 'server.elasticsearch.maxDocumentsPerRequest', opts.maxItems)
    // Every action but delete is followed by its document (update: the change to apply).
    const doc = action === 'delete' ? undefined : next()
    if (action !== 'delete' && doc === undefined) throw errors.badRequest(`the ${action} action on line ${at} has no document line after it; the bulk request must end with a newline after its last document`, { line: at })
    const failed = (error: ItemError, raw?: Buffer): void => void items.push({ action, index: index ?? '', id, line: at, error, raw })
    if (action === 'update' || action === 'delete') {
      failed(notSupported(action))
      continue
    }
    if (index === undefined || index === '') {
      failed({ status: 400, type: 'action_request_validation_exception', reason: 'Validation Failed: 1: index is missing;' })
      continue
    }
    if (id === '') {
      failed({ status: 400, type: 'illegal_argument_exception', reason: 'if _id is specified it must not be empty' })
      continue
    }
    const bytes = doc!.bytes
    let value: unknown
    try {
      value = JSON.parse(bytes.toString('utf8'))
    } catch (err) {
      failed({ status: 400, type: 'document_parsing_exception', reason: `[${doc!.line}:1] failed to parse: ${(err as Error).message}` }, bytes)
      continue
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      failed({ status: 400, type: 'document_parsing_exception', reason: `[${doc!.line}:1] failed to parse: the document must be a JSON object` }, bytes)
      continue
    }
    items.push({ action, index, id, line: at, event: events.length })
    // The id is the event id: a retried document is stored once within the exchange's dedup window.
    events.push({ body: bytes, value, json: true, routingKey: index, id })
  }
  if (items.length === 0) throw errors.badRequest('the bulk request holds no actions', { events: 0 })
  return { items, events }
}

function readAction(text: string, at: number, defaultIndex: string | undefined): Action {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw malformed(at, `expected a JSON object (${(err as Error).message})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed(at, 'expected START_OBJECT')
  const keys = Object.keys(parsed)
  if (keys.length !== 1 || !actions.has(keys[0]!)) throw malformed(at, `expected field [create], [delete], [index] or [update] but found [${keys.join(', ')}]`)
  const action = keys[0] as BulkAction
  const meta = (parsed as Record<string, unknown>)[action]
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw malformed(at, `expected START_OBJECT after [${action}]`)
  const m = meta as Record<string, unknown>
  const index = m._index === undefined || m._index === null ? defaultIndex : m._index
  if (index !== undefined && typeof index !== 'string') throw malformed(at, '[_index] must be a string')
  const rawId = m._id
  if (rawId !== undefined && rawId !== null && typeof rawId !== 'string' && typeof rawId !== 'number') throw malformed(at, '[_id] must be a string')
  return { action, index, id: rawId === undefined || rawId === null ? undefined : String(rawId) }
}

function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0x20 && b[i] !== 0x09) return false
  return true
}

const createdTail = ',"_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}}'
const noopTail = ',"_version":1,"result":"noop","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":200}}'

/** How the publish went, for the items that reached it. */
export type Outcome =
  | { readonly kind: 'result'; readonly result: PublishResult }
  /** Refused or failed as a whole: every published item gets this error. */
  | { readonly kind: 'error'; readonly error: SluiceError }

/** Elasticsearch's error type for a refusal of Sluice's. */
function errorType(e: SluiceError): string {
  if (e.retryable) return 'es_rejected_execution_exception'
  if (e.wireCode === 'event_too_large' || e.wireCode === 'event_too_deep' || e.wireCode === 'bad_event') return 'document_parsing_exception'
  return e.wireCode
}

/**
 * The answer: `{took, errors, items}`, one item per action in order. A refusal that a retry can
 * get past (rate limit, alarm, backlog) is a 429 item, which Beats, Logstash, Fluent Bit and the
 * clients' bulk helpers retry; a document Sluice will never take is a 400 item.
 */
export function bulkAnswer(bulk: Bulk, outcome: Outcome | undefined, tookMs: number): string {
  const status = new Array<ItemError | 'created' | 'duplicate' | 'dropped'>(bulk.events.length).fill('created')
  if (outcome?.kind === 'error') {
    const e = outcome.error
    // Every retryable refusal is a 429 item, the one status every bulk client retries.
    const err: ItemError = { status: e.retryable ? 429 : e.status, type: errorType(e), reason: e.message }
    status.fill(err)
  } else if (outcome !== undefined) {
    const r = outcome.result
    for (const i of r.duplicateAt ?? []) status[i] = 'duplicate'
    for (const i of r.unroutableAt ?? []) status[i] = 'dropped'
    for (const { index, error } of r.refused ?? []) status[index] = { status: error.status === 413 ? 400 : error.status, type: errorType(error), reason: error.message }
    if (r.deferred !== undefined) {
      const wait = Math.max(1, Math.ceil(r.deferred.retryAfterMs / 1000))
      for (let i = r.deferred.from; i < status.length; i++) status[i] = { status: 429, type: 'es_rejected_execution_exception', reason: `over the ingest rate limit; retry after ${wait} s` }
    }
  }
  // Answers name an _id for every stored document, as Elasticsearch does; one Sluice makes up is
  // unique but not kept (the event has no id, so it is not deduplicated).
  const prefix = randomBytes(9).toString('base64url')
  const quoted = new Map<string, string>()
  const quote = (index: string): string => {
    let q = quoted.get(index)
    if (q === undefined) quoted.set(index, (q = JSON.stringify(index)))
    return q
  }
  let failed = false
  const parts: string[] = []
  for (let k = 0; k < bulk.items.length; k++) {
    const item = bulk.items[k]!
    const id = item.id === undefined ? `"${prefix}${k.toString(36).padStart(8, '0')}"` : JSON.stringify(item.id)
    const s = item.event === undefined ? item.error! : status[item.event]!
    const head = `{"${item.action}":{"_index":${quote(item.index)},"_id":${id}`
    if (typeof s === 'object') {
      failed = true
      parts.push(`${head},"status":${s.status},"error":{"type":${JSON.stringify(s.type)},"reason":${JSON.stringify(s.reason)}}}}`)
    } else if (s === 'duplicate' && item.action === 'create') {
      failed = true
      const reason = `[${item.id}]: version conflict, document already exists (an event with this id was stored within the exchange's dedup window)`
      parts.push(`${head},"status":409,"error":{"type":"version_conflict_engine_exception","reason":${JSON.stringify(reason)}}}}`)
    } else {
      // A duplicate indexed again, or an event the exchange drops as unroutable: nothing new was stored.
      parts.push(head + (s === 'created' ? createdTail : noopTail))
    }
  }
  return `{"took":${Math.max(0, Math.round(tookMs))},"errors":${failed},"items":[${parts.join(',')}]}`
}
