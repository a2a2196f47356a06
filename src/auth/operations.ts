// The one table of what each operation needs, for every door. docs/security.md renders it
// (renderPermissionTable), and a test fails when the two disagree.
//
// RabbitMQ's model: three permissions, each a pattern over resource names. `configure` creates,
// deletes and changes things; `write` puts events into something; `read` takes events out of it.
// A binding reads its source and writes its destination. An AMQP queue is a stream and a group of
// the same name, so its checks name that one name. Tag `administrator` passes every check.

import type { UserTag } from '../config/index.js'

export type Permission = 'configure' | 'write' | 'read'

/** `broker` stands for the server as a whole: listings, the overview, /metrics, users. */
export type ResourceKind = 'exchange' | 'stream' | 'group' | 'broker'

export interface Resource {
  readonly kind: ResourceKind
  readonly name: string
}

/** One permission an operation needs, on the resource the caller passes under `role`. */
export interface Need {
  readonly permission: Permission
  readonly role: string
  readonly kind: Exclude<ResourceKind, 'broker'> | 'exchange|stream'
}

export interface OperationSpec {
  /** Every one of these must hold (for a user that is not an administrator). */
  readonly needs: readonly Need[]
  /** A tag that passes instead of the needs: `monitoring` may look at any stream or group. */
  readonly orTag?: UserTag
  /** A tag the operation needs besides (or instead of) permissions, on the broker resource named. */
  readonly tag?: { readonly tag: UserTag; readonly resource: string }
  /** Where a client meets it, for docs/security.md. */
  readonly doors: string
  readonly doc: string
}

const need = <R extends string>(permission: Permission, role: R, kind: Need['kind']) => ({ permission, role, kind }) as const

export const operations = {
  publish: {
    needs: [need('write', 'exchange', 'exchange')],
    doors: 'HTTP `POST /v1/exchanges/{exchange}/publish`; AMQP `basic.publish`; NDJSON, syslog, GELF and Forward as their listener\'s user; OTLP `POST /v1/logs`, Loki `POST /loki/api/v1/push` and Elasticsearch `POST /_bulk`, `POST /{index}/_bulk` on the exchange of their `server.otlp`, `server.loki` or `server.elasticsearch`',
    doc: 'publish events to an exchange (`""` is `amq.default` over AMQP, as in RabbitMQ)',
  },
  consume: {
    needs: [need('read', 'group', 'group')],
    doors: 'HTTP `POST /v1/groups/{group}/fetch`, `/ack`, `/nack`, `/extend`; AMQP `basic.consume`, `basic.get` on a classic queue, and `queue.declare` of a new queue with `x-dead-letter-exchange` (read on the queue, as RabbitMQ asks)',
    doc: "take events from a group and settle them; the group's name is checked, not its stream's, as a RabbitMQ queue's is",
  },
  'stream.read': {
    needs: [need('read', 'stream', 'stream')],
    doors: 'HTTP `GET /v1/streams/{stream}/events` (reads and tails, `sluice tail`); AMQP `basic.consume` on a stream queue',
    doc: 'read a stream by offset or time, with no group',
  },
  'stream.view': {
    needs: [need('read', 'stream', 'stream')],
    orTag: 'monitoring',
    doors: 'HTTP `GET /v1/streams/{stream}`',
    doc: "a stream's size, offsets and rate",
  },
  'group.view': {
    needs: [need('read', 'group', 'group')],
    orTag: 'monitoring',
    doors: 'HTTP `GET /v1/groups/{group}`, `GET /v1/groups/{group}/lag`',
    doc: "a group's backlog, members and settings, and its lag over the last minutes",
  },
  'group.declare': {
    needs: [need('configure', 'group', 'group'), need('read', 'stream', 'stream')],
    doors: 'HTTP `PUT /v1/groups/{group}`',
    doc: 'make a group on a stream: configure on the group, and read on its stream, since the group reads it',
  },
  'group.deadLetter': {
    needs: [need('write', 'target', 'exchange|stream')],
    doors: 'HTTP `PUT /v1/groups/{group}` with `deadLetter`; AMQP `queue.declare` with `x-dead-letter-exchange`',
    doc: 'name a dead-letter target: write on that exchange or stream, as RabbitMQ asks write on a dead-letter exchange',
  },
  'group.reset': {
    needs: [need('configure', 'group', 'group')],
    doors: 'HTTP `POST /v1/groups/{group}/reset`',
    doc: "move a group's cursor (replay or skip)",
  },
  'group.delete': {
    needs: [need('configure', 'group', 'group')],
    doors: 'HTTP `DELETE /v1/groups/{group}`',
    doc: 'delete a group declared at run time, its cursor and state (not one the configuration file declares)',
  },
  'group.parked.read': {
    needs: [need('read', 'group', 'group')],
    doors: 'HTTP `GET /v1/groups/{group}/parked`',
    doc: "list a group's parked events, bodies included",
  },
  'group.parked.redrive': {
    needs: [need('configure', 'group', 'group')],
    doors: 'HTTP `POST /v1/groups/{group}/parked/redrive`',
    doc: 'deliver parked events again',
  },
  'group.parked.purge': {
    needs: [need('read', 'group', 'group')],
    doors: 'HTTP `DELETE /v1/groups/{group}/parked`',
    doc: "drop a group's parked events: read, as RabbitMQ's `queue.purge`",
  },
  'stream.redrive': {
    needs: [need('configure', 'stream', 'stream')],
    doors: 'HTTP `POST /v1/streams/{stream}/redrive`; `sluice redrive`',
    doc: "send a dead-letter stream's events back to the exchanges they were first published to",
  },
  'exchange.declare': {
    needs: [need('configure', 'exchange', 'exchange')],
    doors: 'AMQP `exchange.declare` (not a passive one, as in RabbitMQ)',
    doc: 'declare an exchange',
  },
  'exchange.delete': {
    needs: [need('configure', 'exchange', 'exchange')],
    doors: 'AMQP `exchange.delete`; HTTP `DELETE /v1/exchanges/{exchange}`',
    doc: 'delete an exchange',
  },
  'queue.declare': {
    needs: [need('configure', 'queue', 'stream')],
    doors: 'AMQP `queue.declare` (not a passive one, as in RabbitMQ; a server-named queue is checked by its `amq.gen-…` name)',
    doc: 'declare a queue (its stream and group share the name)',
  },
  'queue.delete': {
    needs: [need('configure', 'queue', 'stream')],
    doors: 'AMQP `queue.delete`; HTTP `DELETE /v1/streams/{stream}`',
    doc: 'delete a queue',
  },
  'queue.purge': {
    needs: [need('read', 'queue', 'stream')],
    doors: 'AMQP `queue.purge`',
    doc: "drop a queue's ready messages: read, as in RabbitMQ",
  },
  bind: {
    needs: [need('read', 'source', 'exchange'), need('write', 'destination', 'exchange|stream')],
    doors: 'AMQP `queue.bind`, `queue.unbind`, `exchange.bind`, `exchange.unbind`; `exchange.declare` of a new exchange with `alternate-exchange` (read on it, write on the alternate, as RabbitMQ asks); HTTP `DELETE /v1/exchanges/{exchange}/bindings`',
    doc: 'add or remove a binding: read on the source exchange, write on the destination queue or exchange',
  },
  'streams.list': {
    needs: [],
    tag: { tag: 'monitoring', resource: 'streams' },
    doors: 'HTTP `GET /v1/streams`',
    doc: 'list every stream',
  },
  'groups.list': {
    needs: [],
    tag: { tag: 'monitoring', resource: 'groups' },
    doors: 'HTTP `GET /v1/groups`',
    doc: 'list every group',
  },
  'exchanges.list': {
    needs: [],
    tag: { tag: 'monitoring', resource: 'exchanges' },
    doors: 'HTTP `GET /v1/exchanges`',
    doc: 'list every exchange and binding',
  },
  overview: {
    needs: [],
    tag: { tag: 'monitoring', resource: 'overview' },
    doors: 'HTTP `GET /v1/overview`',
    doc: 'the broker overview',
  },
  metrics: {
    needs: [],
    tag: { tag: 'monitoring', resource: 'metrics' },
    doors: 'HTTP `GET /metrics` (open to all with `server.http.openMetrics: true`)',
    doc: 'Prometheus metrics',
  },
  'door.probe': {
    needs: [],
    doors: 'HTTP `GET /` (and `HEAD /`), `GET /_license`, `GET /_xpack`, `GET /_cluster/health`, `GET` and `PUT /_index_template/{name}` and `/_template/{name}`, `HEAD /{index}`: the Elasticsearch door',
    doc: 'what an agent asks before it publishes: the handshake and the probes; they show nothing of the broker',
  },
  'exchange.route': {
    needs: [need('write', 'exchange', 'exchange')],
    orTag: 'monitoring',
    doors: 'HTTP `POST /v1/exchanges/{exchange}/route` (the management UI\'s "test a routing key")',
    doc: 'ask where an event published to an exchange would go; nothing is published',
  },
  whoami: {
    needs: [],
    doors: 'HTTP `GET /v1/whoami`',
    doc: 'who the request logged in as, its tags and permission patterns (the management UI hides what the user may not do)',
  },
  'users.manage': {
    needs: [],
    tag: { tag: 'administrator', resource: 'users' },
    doors: 'HTTP `GET /v1/users` (a list: users live in the configuration file, and no route adds or changes one)',
    doc: 'list users, their tags, permissions and API key names (never a password, hash or key)',
  },
  definitions: {
    needs: [],
    tag: { tag: 'administrator', resource: 'definitions' },
    doors: 'HTTP `GET /v1/definitions`, `POST /v1/definitions`',
    doc: 'export or import every exchange, stream, binding and group at once, in the configuration file\'s shape',
  },
  'cluster.move': {
    needs: [],
    tag: { tag: 'administrator', resource: 'cluster' },
    doors: 'HTTP `POST /v1/cluster/streams/{stream}/move` (`sluice cluster move`)',
    doc: 'move a stream, with its groups, to another node of the cluster',
  },
} as const satisfies Readonly<Record<string, OperationSpec>>

export type Operation = keyof typeof operations

type RoleOf<O extends Operation> = (typeof operations)[O]['needs'][number] extends infer N ? (N extends { readonly role: infer R extends string } ? R : never) : never

/** The resources an operation is checked on, by role: `{exchange: {kind: 'exchange', name}}` for publish. */
export type ResourcesOf<O extends Operation> = { readonly [R in RoleOf<O>]: Resource }

/** What an operation needs, in words: `write on the exchange`, `tag \`monitoring\``. */
export function describeNeeds(operation: Operation): string {
  const op: OperationSpec = operations[operation]
  const parts = op.needs.map((n) => `${n.permission} on the ${n.kind.replace('|', ' or ')}${n.role === n.kind ? '' : ` (${n.role})`}`)
  if (op.tag !== undefined) parts.push(`tag \`${op.tag.tag}\``)
  return parts.length === 0 ? 'a login (any user)' : parts.join(', ') + (op.orTag !== undefined ? `; or tag \`${op.orTag}\`` : '')
}

/** docs/security.md's permission table: one row per operation. */
export function renderPermissionTable(): string {
  const rows = Object.entries(operations as Readonly<Record<string, OperationSpec>>).map(([name, op]) => `| \`${name}\` | ${describeNeeds(name as Operation)} | ${op.doc} | ${op.doors} |`)
  return ['| operation | needs | what | where |', '|---|---|---|---|', ...rows].join('\n')
}
