// The HTTP API as an OpenAPI 3.1 document (served at GET /v1/openapi.json, rendered into
// docs/api.md). One entry per route, with JSON Schemas for its path parameters, query, body and
// answers; test/docs/openapi.test.ts fails when a route the server registers is missing here or
// an entry names a route that does not exist.
//
// The schemas describe; the handlers validate. Bodies reach the handlers as raw bytes (NDJSON is
// stored as sent, other doors read their own encodings), and a handler's refusal names the limit
// key it hit (`server.http.maxFetchEvents`), which fastify's schema validation would not. So the
// schemas are not handed to fastify as route schemas, and this module is the one place they live.

import { describeNeeds, type Operation } from '../../auth/index.js'
import { namePattern } from '../../config/validate.js'
import { httpRules } from './access.js'

export type JsonSchema = Readonly<Record<string, unknown>>

interface Answer {
  readonly description: string
  /** Media type → schema; none for an answer without a body. */
  readonly content?: Readonly<Record<string, JsonSchema>>
}

export interface RouteDoc {
  readonly summary: string
  readonly tag: 'health' | 'publish' | 'exchanges' | 'streams' | 'groups' | 'admin' | 'doors' | 'api'
  readonly query?: Readonly<Record<string, JsonSchema & { readonly description: string }>>
  readonly headers?: Readonly<Record<string, JsonSchema & { readonly description: string }>>
  /** Media type → schema. */
  readonly body?: Readonly<Record<string, JsonSchema>>
  readonly answers: Readonly<Record<number, Answer>>
  /** The route's own error codes, by status (docs/errors.md has each). */
  readonly errors?: Readonly<Record<number, readonly string[]>>
  /** No login: the open routes. */
  readonly open?: boolean
}

const json = 'application/json'
const str: JsonSchema = { type: 'string' }
const int = (minimum?: number, maximum?: number): JsonSchema => ({ type: 'integer', ...(minimum === undefined ? {} : { minimum }), ...(maximum === undefined ? {} : { maximum }) })
const bool: JsonSchema = { type: 'boolean' }
const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` })
const obj = (properties: Readonly<Record<string, JsonSchema>>, required: readonly string[] = [], more = true): JsonSchema => ({ type: 'object', properties, required, ...(more ? {} : { additionalProperties: false }) })
const array = (items: JsonSchema): JsonSchema => ({ type: 'array', items })
const ok = (description: string, schema?: JsonSchema, media = json): Answer => (schema === undefined ? { description } : { description, content: { [media]: schema } })
const noContent: Answer = { description: 'done; no body' }
const q = (schema: JsonSchema, description: string): JsonSchema & { description: string } => ({ ...schema, description })

/** Shapes several routes share, under components.schemas. */
export const sharedSchemas: Readonly<Record<string, JsonSchema>> = {
  Error: obj({ error: obj({ code: { type: 'string', description: 'the wire code (docs/errors.md)' }, message: str, details: { type: 'object' } }, ['code', 'message']) }, ['error']),
  Body: { description: 'the event body: any JSON value; a body stored as bytes is a string with bodyEncoding', anyOf: [{ type: 'object' }, { type: 'array' }, str, { type: 'number' }, bool, { type: 'null' }] },
  BodyEncoding: { type: 'string', enum: ['text', 'base64'], description: 'present only for a body that is not JSON: text (valid UTF-8), else base64' },
  Event: obj(
    { offset: int(0), timestamp: { type: 'string', format: 'date-time' }, routingKey: str, exchange: { type: ['string', 'null'] }, id: { type: ['string', 'null'] }, headers: { type: 'object' }, body: ref('Body'), bodyEncoding: ref('BodyEncoding') },
    ['offset', 'timestamp', 'routingKey', 'exchange', 'id', 'headers', 'body'],
  ),
  Delivery: obj(
    { tag: { type: 'string', description: 'generation-offset-count-secret: settle the delivery by it' }, id: str, stream: str, offset: int(0), deliveryCount: int(1), redelivered: bool, routingKey: str, timestamp: { type: 'string', format: 'date-time' }, headers: { type: 'object' }, body: ref('Body'), bodyEncoding: ref('BodyEncoding') },
    ['tag', 'id', 'stream', 'offset', 'deliveryCount', 'redelivered', 'routingKey', 'timestamp', 'headers', 'body'],
  ),
  Stream: obj(
    {
      name: str,
      events: int(0),
      bytes: int(0),
      segments: int(0),
      firstOffset: int(0),
      lastOffset: int(-1),
      nextOffset: int(0),
      oldestTimestamp: { type: ['string', 'null'], format: 'date-time' },
      newestTimestamp: { type: ['string', 'null'], format: 'date-time' },
      appendRatePerSec: { type: 'number' },
      fsync: { type: 'string', enum: ['always', 'batch', 'never'] },
      retention: { type: 'object' },
    },
    ['name', 'events', 'bytes', 'segments', 'firstOffset', 'lastOffset', 'nextOffset'],
  ),
  Group: obj({ name: str, stream: str, cursor: int(0), backlog: int(0), inFlight: int(0), members: array(obj({ name: str, inFlight: int(0), assigned: int(0), credit: int(0), lastSeen: str })), config: { type: 'object' } }, ['name', 'stream']),
  Settled: obj({ settled: int(0), failed: array(obj({ tag: str, code: { type: 'string', enum: ['unknown_tag', 'stale_tag', 'already_settled', 'not_yours'] }, message: str }, ['tag', 'code', 'message'])) }, ['settled', 'failed']),
  Tags: obj({ tags: array(str), consumer: str }, ['tags']),
  AckBody: {
    description: 'The deliveries to settle, one way: `tags`, each named; `upTo`, every delivery the tag\'s consumer holds up to and including it, in delivery order (AMQP\'s multiple); or `ranges`, pairs [fromTag, toTag] of one consumer\'s deliveries, both ends included.',
    type: 'object',
    properties: { tags: array(str), upTo: str, ranges: array({ type: 'array', items: str, minItems: 2, maxItems: 2 }), consumer: str },
  },
}

const name = (what: string): JsonSchema => ({ type: 'string', maxLength: 200, pattern: namePattern.source, description: `the ${what}'s name` })
const publishAnswer = obj({ accepted: int(0), duplicates: int(0), unroutable: int(0) }, ['accepted', 'duplicates', 'unroutable'])
const probe = (summary: string, answers: Readonly<Record<number, Answer>>): RouteDoc => ({ summary, tag: 'doors', answers })

/** Every route, by fastify's method and pattern (`:name` for a path parameter). */
export const routeDocs: Readonly<Record<string, RouteDoc>> = {
  'GET /healthz': { summary: 'Liveness: the process answers', tag: 'health', open: true, answers: { 200: ok('alive', obj({ status: { const: 'ok' } }, ['status'])) } },
  'GET /readyz': {
    summary: 'Readiness: recovery is over and publishes can be confirmed',
    tag: 'health',
    open: true,
    answers: { 200: ok('ready', obj({ status: { const: 'ready' } }, ['status'])) },
    errors: { 503: ['not_ready', 'alarm', 'overloaded'] },
  },
  'GET /metrics': { summary: 'Prometheus metrics (text exposition format)', tag: 'health', answers: { 200: ok('the metrics', str, 'text/plain') } },
  'GET /v1/openapi.json': { summary: 'This document', tag: 'api', open: true, answers: { 200: ok('the OpenAPI 3.1 document', { type: 'object' }) } },
  'POST /v1/exchanges/:exchange/publish': {
    summary: 'Publish events to an exchange; answered once every event is durable in every stream it routes to',
    tag: 'publish',
    query: { routingKey: q(str, "every event's routing key (else the exchange's template)"), envelope: q({ type: 'string', enum: ['true', 'false'] }, 'each value is {body, routingKey?, headers?, id?, timestamp?, ttl?}') },
    headers: {
      'idempotency-key': q(str, 'a retried request with the same key is confirmed, not stored again'),
      'x-routing-key': q(str, 'as ?routingKey='),
      'x-event-ttl': q(str, "the events' TTL in whole milliseconds"),
    },
    body: {
      'application/x-ndjson': { type: 'string', description: 'one JSON event a line (also application/jsonl, application/ndjson, or no content type); may be gzip-compressed' },
      [json]: { description: 'one event, or an array of them', anyOf: [{ type: 'object' }, { type: 'array' }] },
    },
    answers: { 200: ok('stored', publishAnswer) },
    errors: { 400: ['bad_event', 'bad_request', 'unroutable'], 404: ['unknown_exchange'], 409: ['idempotency_key_reused'], 413: ['event_too_large', 'too_many_events'], 415: ['unsupported_media_type'], 429: ['rate_limited', 'backlog_full'], 503: ['alarm', 'disk_space'] },
  },
  'GET /v1/exchanges': {
    summary: 'Every exchange with its bindings',
    tag: 'exchanges',
    answers: {
      200: ok(
        'the exchanges',
        obj({ exchanges: array(obj({ name: str, type: { type: 'string', enum: ['direct', 'fanout', 'topic', 'headers'] }, routingKey: { type: ['string', 'null'] }, alternate: { type: ['string', 'null'] }, unroutable: str, dedup: { type: ['string', 'null'] }, dedupWindowMs: int(0), bindings: array(obj({ stream: str, toExchange: str, key: str, match: { type: 'string', enum: ['all', 'any'] }, headers: { type: 'object' } })) }, ['name', 'type', 'bindings'])) }, ['exchanges']),
      ),
    },
  },
  'DELETE /v1/exchanges/:exchange': {
    summary: 'Delete an exchange declared at run time, and its bindings',
    tag: 'exchanges',
    query: { ifUnused: q({ type: 'string', enum: ['true', 'false'] }, 'refuse while the exchange has bindings') },
    answers: { 204: noContent },
    errors: { 400: ['bad_request'], 403: ['definition_protected'], 404: ['unknown_exchange'], 409: ['definition_in_use'] },
  },
  'DELETE /v1/exchanges/:exchange/bindings': {
    summary: 'Remove one binding declared at run time',
    tag: 'exchanges',
    body: { [json]: obj({ stream: str, toExchange: str, key: str, match: { type: 'string', enum: ['all', 'any'] }, headers: { type: 'object' } }) },
    answers: { 204: noContent },
    errors: { 400: ['bad_request'], 403: ['definition_protected'], 404: ['unknown_exchange'] },
  },
  'GET /v1/overview': {
    summary: 'The broker at a glance',
    tag: 'streams',
    answers: { 200: ok('totals', obj({ ready: bool, uptimeSeconds: int(0), exchanges: int(0), streams: int(0), events: int(0), bytes: int(0), publish: { type: 'object' }, groups: int(0), listeners: { type: 'object' }, ingestErrors: { type: 'object' }, alarms: array({ type: 'object' }), rateLimited: { type: 'object' }, disk: { ...obj({ freeBytes: int(0), totalBytes: int(0), limitBytes: int(0) }), type: ['object', 'null'], description: "the data dir's file system: free to unprivileged writers, its size, and server.alarms.diskFreeLimit; null when it cannot be read" } })) },
  },
  'GET /v1/cluster': {
    summary: "This node's view of the cluster: its membership and lease, the controller, the nodes, and where each stream lives",
    tag: 'streams',
    answers: {
      200: ok(
        'the view; `{"enabled": false}` on a single node',
        obj(
          {
            enabled: bool,
            node: str,
            state: { type: 'string', enum: ['joining', 'member', 'fenced', 'stopped'] },
            lease: { type: 'object', description: 'id, ttlMs, remainingMs (before the node fences itself), sinceKeepaliveMs' },
            controller: { type: ['object', 'null'], description: 'node, epoch (the controller key\'s create revision), since, self' },
            nodes: array({ type: 'object', description: 'id, host, httpPort, amqpPort, lease, startedAt, version, storedBytes, streams' }),
            placement: array({ type: 'object', description: 'stream, node, epoch, controllerEpoch, since, live (its node holds a lease)' }),
            unplaced: array(str),
            minNodes: int(1),
            etcd: { type: 'object', description: 'endpoints, prefix, revision (the newest this node has seen)' },
            internalPort: int(0),
            forwarding: { type: 'object', description: 'appends this node forwarded, by home node: {ok, error, events, seconds}' },
          },
          ['enabled'],
        ),
      ),
    },
  },
  'POST /v1/cluster/streams/:stream/move': {
    summary: 'Move a stream, with its groups and remembered ids, to another node (`sluice cluster move`); publishes to it wait while it moves',
    tag: 'streams',
    body: { [json]: obj({ node: str }, ['node']) },
    answers: {
      200: ok(
        'the stream lives on its new node',
        obj({ stream: str, from: str, to: str, epoch: int(1), events: int(0), bytes: int(0), groups: int(0), ids: int(0), durationMs: int(0) }),
      ),
    },
    errors: { 400: ['bad_request'], 409: ['move_refused'], 503: ['move_failed', 'cluster_unavailable'] },
  },
  'GET /v1/overview/rates': {
    summary: 'Ingest and delivery per second over the last server.http.rateHistory, sampled every second',
    tag: 'streams',
    answers: { 200: ok('the samples', obj({ intervalMs: int(1), historyMs: int(1), totals: obj({ ingest: int(0), delivered: int(0) }), times: array(int(0)), ingest: array({ type: 'number' }), delivered: array({ type: 'number' }) }, ['intervalMs', 'historyMs', 'times', 'ingest', 'delivered'])) },
  },
  'GET /v1/whoami': {
    summary: 'Who the request logged in as, and the patterns of its permissions',
    tag: 'api',
    answers: { 200: ok('the identity', obj({ username: str, tags: array(str), method: str, patterns: obj({ configure: { type: ['string', 'null'] }, write: { type: ['string', 'null'] }, read: { type: ['string', 'null'] } }) }, ['username', 'tags', 'method', 'patterns'])) },
  },
  'POST /v1/exchanges/:exchange/route': {
    summary: 'Where an event would go, as the router decides now; nothing is published',
    tag: 'exchanges',
    body: { [json]: obj({ routingKey: str, headers: { type: 'object' }, body: ref('Body') }) },
    answers: { 200: ok('the destinations', obj({ exchange: str, routingKey: str, streams: array(str), unroutable: bool, policy: { type: 'string', enum: ['drop', 'reject'] } }, ['exchange', 'routingKey', 'streams', 'unroutable'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_exchange'] },
  },
  'GET /v1/streams/:stream/search': {
    summary: 'Events that match a routing-key pattern and a text, a page at a time; nothing consumed',
    tag: 'streams',
    query: { from: q(str, 'as for /events (earliest)'), key: q(str, 'a topic pattern the routing key must match'), q: q(str, 'text the body must contain, case-insensitive'), limit: q(int(1, 1000), 'events per page (50)') },
    answers: { 200: ok('a page', obj({ stream: str, events: array(ref('Event')), nextOffset: int(0), scanned: int(0), complete: bool, startOffset: int(0), endOffset: int(0) }, ['stream', 'events', 'nextOffset', 'complete'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'], 416: ['log_offset_out_of_range'] },
  },
  'GET /v1/streams/:stream/tail': {
    summary: "A live tail: the stream's events as they are stored, as server-sent events",
    tag: 'streams',
    query: { from: q(str, 'as for /events (latest)') },
    answers: { 200: ok('id: offset, event: event, data: the event as /events answers it', { type: 'string' }, 'text/event-stream') },
    errors: { 404: ['unknown_stream'], 503: ['too_many_connections'] },
  },
  'GET /v1/streams/:stream/dead-letters': {
    summary: 'Count the dead letters a redrive would send back, by reason and origin, without sending any',
    tag: 'streams',
    query: { reason: q(str, 'filter as a redrive takes it'), group: q(str, 'filter'), exchange: q(str, 'filter'), from: q(str, 'where to start reading'), offsets: q(str, 'only these offsets, separated by commas (at most server.http.maxRedriveOffsets)') },
    answers: { 200: ok('the counts', obj({ stream: str, filter: { type: 'object' }, matching: int(0), noExchange: int(0), byReason: { type: 'object' }, byOrigin: array(obj({ group: str, stream: str, exchange: str, count: int(0) })), otherOrigins: int(0), scanned: int(0), nextOffset: int(0), complete: bool }, ['stream', 'matching', 'complete'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'] },
  },
  'GET /v1/streams': { summary: 'Every stream', tag: 'streams', answers: { 200: ok('the streams', obj({ streams: array(ref('Stream')) }, ['streams'])) } },
  'GET /v1/streams/:stream': {
    summary: "A stream's size, offsets and rate (cluster mode: its leader's)",
    tag: 'streams',
    query: { copy: q({ type: 'string', enum: ['local'] }, "cluster mode: this node's own copy's figures") },
    answers: { 200: ok('the stream', ref('Stream')) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'] },
  },
  'DELETE /v1/streams/:stream': {
    summary: 'Delete a stream declared at run time, its files and bindings',
    tag: 'streams',
    query: { ifUnused: q({ type: 'string', enum: ['true', 'false'] }, 'refuse while it has consumers'), ifEmpty: q({ type: 'string', enum: ['true', 'false'] }, 'refuse while it holds events') },
    answers: { 204: noContent },
    errors: { 400: ['bad_request'], 403: ['definition_protected'], 404: ['unknown_stream'], 409: ['definition_in_use'] },
  },
  'GET /v1/streams/:stream/events': {
    summary: 'Read a stream by offset or time, with no group',
    tag: 'streams',
    query: {
      from: q(str, 'earliest (default), latest, an offset, or an ISO 8601 time'),
      limit: q(int(1), 'events at most, up to server.http.maxReadEvents'),
      waitMs: q(int(0), 'when from is the end, wait this long for the next event, up to server.http.maxReadWait'),
      copy: q({ type: 'string', enum: ['local'] }, "cluster mode: this node's own copy, to its end, past the high watermark too (to check a replica)"),
    },
    answers: { 200: ok('events in offset order', obj({ stream: str, events: array(ref('Event')), nextOffset: int(0), startOffset: int(0), endOffset: int(0) }, ['stream', 'events', 'nextOffset', 'startOffset', 'endOffset'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'], 416: ['log_offset_out_of_range'] },
  },
  'POST /v1/streams/:stream/redrive': {
    summary: "Send a dead-letter stream's events back to where they were first published",
    tag: 'streams',
    body: { [json]: obj({ limit: int(1, 1_000_000), filter: obj({ reason: str, group: str, exchange: str }), offsets: { ...array(int(0)), description: 'only these dead letters (one, or a hand-picked selection), at most server.http.maxRedriveOffsets' } }) },
    answers: { 200: ok('redriven', obj({ redriven: int(0), skipped: int(0), remaining: bool, notFound: int(0) }, ['redriven', 'skipped', 'remaining'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'], 409: ['not_dead_letters'] },
  },
  'GET /v1/groups': { summary: 'Every consumer group', tag: 'groups', answers: { 200: ok('the groups', obj({ groups: array(ref('Group')) }, ['groups'])) } },
  'GET /v1/groups/:group/lag': {
    summary: "The group's lag in events and in seconds, one sample a second over the last server.http.rateHistory",
    tag: 'groups',
    answers: { 200: ok('the samples', obj({ group: str, intervalMs: int(1), historyMs: int(1), tracked: bool, now: obj({ backlog: int(0), lagSeconds: { type: 'number' } }), times: array(int(0)), backlog: array(int(0)), lagSeconds: array({ type: 'number' }) }, ['group', 'tracked', 'now', 'times', 'backlog', 'lagSeconds'])) },
    errors: { 404: ['unknown_group'] },
  },
  'GET /v1/groups/:group': { summary: "A group's backlog, members and settings", tag: 'groups', answers: { 200: ok('the group', ref('Group')) }, errors: { 404: ['unknown_group'] } },
  'PUT /v1/groups/:group': {
    summary: 'Declare a group at run time (the keys of a groups.<name> entry)',
    tag: 'groups',
    body: { [json]: obj({ stream: str, deadLetter: { type: 'object' } }, ['stream']) },
    answers: { 200: ok('it exists with these settings', ref('Group')), 201: ok('created', ref('Group')) },
    errors: { 400: ['bad_request'], 404: ['unknown_stream'], 409: ['group_exists', 'too_many_groups'] },
  },
  'DELETE /v1/groups/:group': { summary: 'Delete a group declared at run time', tag: 'groups', answers: { 204: noContent }, errors: { 403: ['definition_protected'], 404: ['unknown_group'], 409: ['definition_in_use'] } },
  'GET /v1/groups/:group/consume': {
    summary: 'A push consumer: deliveries stream as NDJSON lines or server-sent events, up to prefetch unacked',
    tag: 'groups',
    query: { consumer: q(str, 'the member'), prefetch: q(str, "unacked deliveries at most (default: the group's prefetch, at most server.http.maxFetchEvents)"), format: q({ type: 'string', enum: ['ndjson', 'sse'] }, 'ndjson (the default) or sse (also chosen by Accept: text/event-stream)') },
    answers: { 200: ok('deliveries as they are dispatched, one Delivery a line; blank lines are heartbeats', ref('Delivery'), 'application/x-ndjson') },
    errors: { 400: ['bad_request'], 404: ['unknown_group'], 409: ['consumer_in_use'], 503: ['too_many_consumers'] },
  },
  'POST /v1/groups/:group/fetch': {
    summary: 'Take up to max events for one member (a long poll with waitMs)',
    tag: 'groups',
    body: { [json]: obj({ consumer: str, max: int(1), waitMs: int(0) }, ['consumer']) },
    answers: { 200: ok('deliveries', obj({ events: array(ref('Delivery')) }, ['events'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_group'], 409: ['consumer_in_use'], 503: ['too_many_consumers'] },
  },
  'POST /v1/groups/:group/ack': { summary: 'Settle deliveries for good', tag: 'groups', body: { [json]: ref('AckBody') }, answers: { 200: ok('per tag', ref('Settled')) }, errors: { 400: ['bad_request'], 404: ['unknown_group'] } },
  'POST /v1/groups/:group/nack': {
    summary: 'Give deliveries back: redelivered later, or dead-lettered with requeue false',
    tag: 'groups',
    body: { [json]: obj({ tags: array(str), requeue: bool, delayMs: int(0), reason: str, consumer: str }, ['tags']) },
    answers: { 200: ok('per tag', ref('Settled')) },
    errors: { 400: ['bad_request'], 404: ['unknown_group'] },
  },
  'POST /v1/groups/:group/extend': { summary: 'Restart the ack timeout of deliveries still being worked on', tag: 'groups', body: { [json]: ref('Tags') }, answers: { 200: ok('per tag', ref('Settled')) }, errors: { 400: ['bad_request'], 404: ['unknown_group'] } },
  'POST /v1/groups/:group/reset': {
    summary: "Move the group's cursor (replay or skip)",
    tag: 'groups',
    body: { [json]: obj({ to: { description: 'earliest, latest, an offset, or an ISO 8601 time', anyOf: [str, int(0)] } }, ['to']) },
    answers: { 200: ok('the new cursor', obj({ cursor: int(0) }, ['cursor'])) },
    errors: { 400: ['bad_request'], 404: ['unknown_group'] },
  },
  'GET /v1/groups/:group/parked': {
    summary: 'Events the group set aside',
    tag: 'groups',
    query: { limit: q(int(1, 10_000), 'at most this many (100)') },
    answers: { 200: ok('parked events', obj({ parked: array({ type: 'object' }) }, ['parked'])) },
    errors: { 404: ['unknown_group'] },
  },
  'POST /v1/groups/:group/parked/redrive': { summary: 'Deliver parked events again', tag: 'groups', body: { [json]: obj({ limit: int(1, 1_000_000) }) }, answers: { 200: ok('redriven', obj({ redriven: int(0) }, ['redriven'])) }, errors: { 400: ['bad_request'], 404: ['unknown_group'] } },
  'DELETE /v1/groups/:group/parked': { summary: 'Drop parked events', tag: 'groups', query: { limit: q(int(1, 1_000_000), 'at most this many (10000)') }, answers: { 200: ok('purged', obj({ purged: int(0) }, ['purged'])) }, errors: { 404: ['unknown_group'] } },
  'GET /v1/users': {
    summary: 'The users of the configuration file, with their tags, permissions and API key names; never a password, hash or key',
    tag: 'admin',
    answers: {
      200: ok(
        'the users',
        obj(
          {
            anonymous: { type: 'string', enum: ['loopback', 'none'] },
            users: array(obj({ username: str, tags: array(str), loopbackOnly: bool, permissions: obj({ configure: { type: ['string', 'null'] }, write: { type: ['string', 'null'] }, read: { type: ['string', 'null'] } }), patterns: obj({ configure: { type: ['string', 'null'] }, write: { type: ['string', 'null'] }, read: { type: ['string', 'null'] } }), apiKeys: array(str) }, ['username', 'tags', 'loopbackOnly', 'permissions', 'patterns', 'apiKeys'])),
          },
          ['anonymous', 'users'],
        ),
      ),
    },
  },
  'GET /v1/definitions': {
    summary: "Every exchange, stream, binding and group, the configuration file's and the run-time ones, in the file's shape",
    tag: 'admin',
    query: { format: q({ type: 'string', enum: ['yaml', 'json'] }, 'yaml (default): the file\'s YAML, each entry marked with a comment; json: {definitions, origins}') },
    answers: {
      200: {
        description: 'the definitions',
        content: {
          'application/yaml': { type: 'string', description: 'exchanges, streams, bindings and groups as the configuration file takes them' },
          [json]: obj({ definitions: obj({ exchanges: { type: 'object' }, streams: { type: 'object' }, bindings: array({ type: 'object' }), groups: { type: 'object' } }), origins: { type: 'object', description: 'file, runtime or builtin, by section and name (bindings by index)' } }, ['definitions', 'origins']),
        },
      },
    },
    errors: { 400: ['bad_request'] },
  },
  'POST /v1/definitions': {
    summary: 'Declare what a definitions document names and is missing; with dryRun, only say what would change',
    tag: 'admin',
    query: { dryRun: q({ type: 'string', enum: ['true', 'false'] }, 'plan only: nothing is declared, conflicts answer 200') },
    body: { 'application/yaml': { type: 'string', description: 'exchanges, streams, bindings and groups, as GET /v1/definitions writes them' }, [json]: { type: 'object', description: 'the same document as JSON' } },
    answers: { 200: ok('what changed (or would)', obj({ applied: bool, changes: array(obj({ kind: { type: 'string', enum: ['exchange', 'stream', 'binding', 'group'] }, name: str, action: { type: 'string', enum: ['create', 'unchanged'] } })), conflicts: array(obj({ kind: str, name: str, message: str })) }, ['applied', 'changes', 'conflicts'])) },
    errors: { 400: ['bad_request'], 409: ['definitions_conflict'], 415: ['unsupported_media_type'] },
  },
  'POST /v1/logs': {
    summary: 'OpenTelemetry OTLP/HTTP logs export (docs/doors/otlp.md)',
    tag: 'doors',
    body: { 'application/x-protobuf': { type: 'string', format: 'binary', description: 'ExportLogsServiceRequest' }, [json]: { type: 'object', description: 'ExportLogsServiceRequest, OTLP JSON' } },
    answers: { 200: ok('ExportLogsServiceResponse, with partialSuccess when some records were refused', { type: 'object' }) },
    errors: { 400: [], 413: ['too_many_events'], 415: [], 429: [], 503: [] },
  },
  'POST /loki/api/v1/push': {
    summary: 'Grafana Loki push (docs/doors/loki.md)',
    tag: 'doors',
    body: { 'application/x-protobuf': { type: 'string', format: 'binary', description: 'PushRequest, snappy-compressed' }, [json]: { type: 'object', description: '{"streams": [{"stream": labels, "values": [[ns, line, metadata?]]}]}' } },
    answers: { 204: noContent },
    errors: { 400: ['bad_request'], 413: ['too_many_events'], 415: ['unsupported_media_type'], 429: ['rate_limited'], 503: ['alarm'] },
  },
  'POST /_bulk': {
    summary: 'Elasticsearch bulk API (docs/doors/elasticsearch.md)',
    tag: 'doors',
    body: { 'application/x-ndjson': { type: 'string', description: 'action and document lines' } },
    answers: { 200: ok("Elasticsearch's bulk answer, one item per action", obj({ took: int(0), errors: bool, items: array({ type: 'object' }) }, ['errors', 'items'])) },
    errors: { 413: ['too_many_events'] },
  },
  'POST /:index/_bulk': {
    summary: 'As POST /_bulk, with {index} as the default index',
    tag: 'doors',
    body: { 'application/x-ndjson': { type: 'string', description: 'action and document lines' } },
    answers: { 200: ok("Elasticsearch's bulk answer", { type: 'object' }) },
    errors: { 413: ['too_many_events'] },
  },
  'GET /': probe("The Elasticsearch handshake: a cluster's name and version, with X-Elastic-Product", { 200: ok('the cluster', { type: 'object' }) }),
  'GET /_license': probe("An agent's license probe", { 200: ok('a basic license', { type: 'object' }) }),
  'GET /_xpack': probe("An agent's feature probe", { 200: ok('features', { type: 'object' }) }),
  'GET /_cluster/health': probe('A green cluster', { 200: ok('health', { type: 'object' }) }),
  'GET /_index_template/:name': probe('No template is kept', { 404: ok('not found, in Elasticsearch\'s shape', { type: 'object' }) }),
  'PUT /_index_template/:name': probe('Acknowledged; the template is not kept', { 200: ok('acknowledged', obj({ acknowledged: bool })) }),
  'GET /_template/:name': probe('No template is kept', { 404: ok('not found', { type: 'object' }) }),
  'PUT /_template/:name': probe('Acknowledged; the template is not kept', { 200: ok('acknowledged', obj({ acknowledged: bool })) }),
  'HEAD /:index': probe('Whether an index exists, as agents ask before they publish', { 200: noContent }),
}

const statusText: Readonly<Record<number, string>> = { 400: 'bad request', 401: 'not logged in', 403: 'not allowed', 404: 'not found', 409: 'conflict', 413: 'too large', 415: 'unsupported media type', 416: 'offset out of range', 429: 'slow down', 503: 'unavailable' }

/** fastify's `/v1/streams/:stream` as OpenAPI writes it: `/v1/streams/{stream}`. */
export const openApiPath = (pattern: string): string => pattern.replace(/:(\w+)/g, '{$1}')

/** The permission line of a route, from the one table (src/auth/operations.ts via httpRules). */
function permissionOf(key: string, doc: RouteDoc): string {
  if (doc.open === true) return 'none (no login)'
  if (key === 'GET /metrics') return 'metrics: tag `monitoring`, or none with `server.http.openMetrics: true`'
  const rule = httpRules[key]
  if (rule === undefined) return 'administrator (no rule)'
  return `${rule.operation}: ${describeNeeds(rule.operation as Operation)}`
}

/** The OpenAPI 3.1 document of the whole HTTP API. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const [key, doc] of Object.entries(routeDocs)) {
    const [method, pattern] = key.split(' ') as [string, string]
    const params = [...pattern.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1]!, in: 'path', required: true, schema: name(m[1]!) }))
    const query = Object.entries(doc.query ?? {}).map(([n, { description, ...schema }]) => ({ name: n, in: 'query', required: false, description, schema }))
    const headers = Object.entries(doc.headers ?? {}).map(([n, { description, ...schema }]) => ({ name: n, in: 'header', required: false, description, schema }))
    const responses: Record<string, unknown> = {}
    for (const [status, answer] of Object.entries(doc.answers)) {
      responses[status] = { description: answer.description, ...(answer.content === undefined ? {} : { content: Object.fromEntries(Object.entries(answer.content).map(([media, schema]) => [media, { schema }])) }) }
    }
    for (const [status, codes] of Object.entries(doc.errors ?? {})) {
      if (responses[status] !== undefined) continue
      const description = codes.length > 0 ? codes.join(', ') : (statusText[Number(status)] ?? 'error')
      responses[status] = doc.tag === 'doors' ? { description } : { description, content: { [json]: { schema: ref('Error') } } }
    }
    if (doc.open !== true) {
      responses['401'] ??= { description: 'unauthenticated', content: { [json]: { schema: ref('Error') } } }
      responses['403'] ??= { description: 'forbidden', content: { [json]: { schema: ref('Error') } } }
    }
    const path = openApiPath(pattern)
    paths[path] ??= {}
    paths[path][method.toLowerCase()] = {
      summary: doc.summary,
      tags: [doc.tag],
      'x-permission': permissionOf(key, doc),
      ...(doc.open === true ? { security: [] } : {}),
      ...(params.length + query.length + headers.length > 0 ? { parameters: [...params, ...query, ...headers] } : {}),
      ...(doc.body === undefined ? {} : { requestBody: { required: true, content: Object.fromEntries(Object.entries(doc.body).map(([media, schema]) => [media, { schema }])) } }),
      responses,
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Sluice HTTP API', version, description: 'Every route of the HTTP listener. Errors share one shape (Error); docs/errors.md lists every code.' },
    security: [{ basic: [] }, { bearer: [] }, {}],
    tags: ['health', 'api', 'publish', 'exchanges', 'streams', 'groups', 'admin', 'doors'].map((t) => ({ name: t })),
    paths,
    components: {
      schemas: sharedSchemas,
      securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer', description: 'an API key (auth.apiKeys)' } },
    },
  }
}

/** A schema in a few words, for docs/api.md: `Delivery[]`, `{accepted, duplicates, unroutable}`. */
function brief(schema: JsonSchema | undefined): string {
  if (schema === undefined) return ''
  const r = schema.$ref
  if (typeof r === 'string') return r.slice(r.lastIndexOf('/') + 1)
  if (schema.type === 'array') return schema.items === undefined ? 'array' : `${brief(schema.items as JsonSchema)}[]`
  if (schema.type === 'object' && schema.properties !== undefined) {
    const required = new Set(schema.required as string[] | undefined)
    const fields = Object.entries(schema.properties as Record<string, JsonSchema>).map(([k, v]) => {
      const inner = v.type === 'array' || v.$ref !== undefined || (v.type === 'object' && v.properties !== undefined) ? `: ${brief(v)}` : ''
      return `${k}${required.has(k) ? '' : '?'}${inner}`
    })
    return `{${fields.join(', ')}}`
  }
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ')
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map(brief).join(' or ')
  const t = schema.type
  return Array.isArray(t) ? t.join(' or ') : typeof t === 'string' ? t : 'any'
}

/** docs/api.md: the OpenAPI document as a reader scans it. */
export function renderApiMarkdown(version = 'current'): string {
  const doc = openApiDocument(version) as { paths: Record<string, Record<string, { summary: string; tags: string[]; 'x-permission': string; parameters?: Array<{ name: string; in: string; description?: string; schema: JsonSchema }>; requestBody?: { content: Record<string, { schema: JsonSchema }> }; responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }> }>> }
  const out = [
    '# HTTP API (OpenAPI)',
    '',
    'Generated from `src/ingest/http/openapi.ts`, the OpenAPI 3.1 document the server serves at',
    '`GET /v1/openapi.json` (no login): `node dist/src/ingest/http/render-api.js > docs/api.md`.',
    '`test/docs/openapi.test.ts` fails when a route is missing from it or this file is stale.',
    '[http-api.md](http-api.md) explains each route in prose; [errors.md](errors.md) lists every error',
    'code. Shared shapes (`Event`, `Delivery`, `Stream`, `Group`, `Settled`, `Tags`, `Error`) are under',
    '"Schemas" at the end.',
  ]
  const byTag = new Map<string, string[]>()
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const lines = [`### \`${method.toUpperCase()} ${path}\``, '', `${op.summary}.`, '', `- **Permission**: ${op['x-permission']}.`]
      for (const p of op.parameters ?? []) lines.push(`- **${p.in === 'path' ? 'Path' : p.in === 'query' ? 'Query' : 'Header'}** \`${p.name}\` (${brief(p.schema)})${p.description !== undefined && p.in !== 'path' ? `: ${p.description}` : ''}.`)
      for (const [media, { schema }] of Object.entries(op.requestBody?.content ?? {})) lines.push(`- **Body** \`${media}\`: \`${brief(schema)}\`${typeof schema.description === 'string' ? `, ${schema.description}` : ''}.`)
      for (const [status, r] of Object.entries(op.responses)) {
        const bodies = Object.entries(r.content ?? {}).map(([media, { schema }]) => (media === 'application/json' ? `\`${brief(schema)}\`` : `\`${media}\``))
        lines.push(`- **${status}**: ${r.description}${bodies.length > 0 ? `, ${bodies.join(', ')}` : ''}.`)
      }
      const tag = op.tags[0]!
      byTag.set(tag, [...(byTag.get(tag) ?? []), lines.join('\n')])
    }
  }
  for (const [tag, sections] of byTag) out.push('', `## ${tag}`, '', sections.join('\n\n'))
  out.push('', '## Schemas', '')
  for (const [n, schema] of Object.entries(sharedSchemas)) out.push(`- **${n}**: \`${brief(schema)}\`${typeof schema.description === 'string' ? `, ${schema.description}` : ''}.`)
  return `${out.join('\n')}\n`
}
