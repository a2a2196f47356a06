// Deleting run-time definitions over HTTP: groups (declared with PUT /v1/groups/{g}), and the
// streams, exchanges and bindings AMQP clients declared. What the configuration file declares is
// protected here as over AMQP (403 definition_protected: change the file), and a delete that would
// leave something dangling (a group reading a stream, a dead-letter target, an alternate
// exchange) is refused with 409 definition_in_use naming what uses it.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ConsumerGroup, GroupRegistry } from '../../consumers/index.js'
import type { Config } from '../../config/index.js'
import { errors } from '../../errors.js'
import type { BindingDef, HeaderValue, Router } from '../../router/index.js'
import { definitionsYaml, exportDefinitions, planImport } from '../definitions.js'
import { readBody, type BodyLimits } from './body.js'
import { serverVersion } from './ui.js'
import type { Catalog } from '../../streams/catalog.js'
import type { StreamRegistry } from '../../streams/registry.js'

/** The AMQP door's queues, when it runs: an AMQP queue is deleted through it, so its consumers are cancelled. */
export interface QueueAdmin {
  deleteQueue(name: string, opts: { readonly ifUnused: boolean; readonly ifEmpty: boolean }): Promise<void>
}

export interface DefinitionsView {
  readonly config: Config
  readonly groups: GroupRegistry
  readonly catalog: Catalog
  readonly streams: StreamRegistry
  readonly router: Router
  readonly queues?: QueueAdmin | undefined
}

function flag(raw: string | undefined, name: string): boolean {
  if (raw === undefined || raw === '' || raw === 'false') return false
  if (raw === 'true') return true
  throw errors.badRequest(`${name} must be true or false, not "${raw}"`, { [name]: raw })
}

/** The AMQP queue a group belongs to: its classic queue's own group, or a stream queue consumer's. */
function queueOf(view: DefinitionsView, g: ConsumerGroup): string | undefined {
  if (view.catalog.stream(g.stream)?.attributes === undefined) return undefined
  return g.name === g.stream || g.name.startsWith(`${g.stream}.`) ? g.stream : undefined
}

const list = (names: readonly string[]): string => names.map((n) => `"${n}"`).join(', ')

function bindingBody(raw: unknown, exchange: string): BindingDef {
  let value: unknown = raw
  if (Buffer.isBuffer(raw)) {
    try {
      value = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'))
    } catch (err) {
      throw errors.badRequest(`the body is not valid JSON (${(err as Error).message})`)
    }
  }
  const shape = 'the body names one binding: {"stream": S} or {"toExchange": E}, with "key" (direct, topic) or "match" and "headers" (headers exchanges)'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.badRequest(shape)
  const b = value as Record<string, unknown>
  for (const k of Object.keys(b)) if (!['stream', 'toExchange', 'key', 'match', 'headers'].includes(k)) throw errors.badRequest(`unknown field "${k}": ${shape}`)
  if ((typeof b.stream === 'string') === (typeof b.toExchange === 'string')) throw errors.badRequest(shape)
  if (b.key !== undefined && typeof b.key !== 'string') throw errors.badRequest('key must be a string')
  if (b.match !== undefined && b.match !== 'all' && b.match !== 'any') throw errors.badRequest('match must be "all" or "any"')
  if (b.headers !== undefined && (typeof b.headers !== 'object' || b.headers === null || Array.isArray(b.headers))) throw errors.badRequest('headers must be an object')
  return {
    exchange,
    ...(typeof b.stream === 'string' ? { stream: b.stream } : { toExchange: b.toExchange as string }),
    ...(b.key !== undefined ? { key: b.key as string } : {}),
    ...(b.match !== undefined ? { match: b.match as 'all' | 'any' } : {}),
    ...(b.headers !== undefined ? { headers: b.headers as Record<string, HeaderValue> } : {}),
  }
}

export function registerDefinitionRoutes(app: FastifyInstance, get: (reply: FastifyReply) => DefinitionsView): void {
  app.delete<{ Params: { group: string } }>('/v1/groups/:group', async (req, reply) => {
    const view = get(reply)
    const name = req.params.group
    const g = view.groups.get(name)
    if (g === undefined) throw errors.unknownGroup(name)
    if (Object.hasOwn(view.config.groups, name)) throw errors.definitionProtected('group', name)
    const queue = queueOf(view, g)
    if (queue !== undefined) throw errors.definitionInUse('group', name, `belongs to AMQP queue "${queue}"; delete the queue (AMQP queue.delete, or DELETE /v1/streams/${queue})`)
    await view.groups.delete(name)
    return reply.status(204).send()
  })

  app.delete<{ Params: { stream: string }; Querystring: { ifUnused?: string; ifEmpty?: string } }>('/v1/streams/:stream', async (req, reply) => {
    const view = get(reply)
    const name = req.params.stream
    const ifUnused = flag(req.query.ifUnused, 'ifUnused')
    const ifEmpty = flag(req.query.ifEmpty, 'ifEmpty')
    const entry = view.catalog.stream(name)
    if (entry === undefined) throw errors.unknownStream(name)
    if (entry.protected) throw errors.definitionProtected('stream', name)
    const deadLetterers = view.groups.all().filter((g) => g.config.deadLetter?.kind === 'stream' && g.config.deadLetter.stream === name && g.stream !== name)
    if (deadLetterers.length > 0) throw errors.definitionInUse('stream', name, `is the dead-letter stream of group ${list(deadLetterers.map((g) => g.name))}`)
    const isQueue = entry.attributes !== undefined
    const readers = view.groups.all().filter((g) => g.stream === name && (!isQueue || queueOf(view, g) === undefined))
    if (readers.length > 0) throw errors.definitionInUse('stream', name, `is read by group ${list(readers.map((g) => g.name))}; delete those first`)
    if (isQueue && view.queues !== undefined) {
      // Through the AMQP door: its consumers are cancelled, its own groups go with it.
      await view.queues.deleteQueue(name, { ifUnused, ifEmpty })
      return reply.status(204).send()
    }
    const log = view.streams.get(name)?.log
    if (ifEmpty && log !== undefined && log.endOffset > log.startOffset) throw errors.definitionInUse('stream', name, `holds ${log.endOffset - log.startOffset} events (ifEmpty)`)
    const own = view.groups.all().filter((g) => g.stream === name)
    for (const g of own) if (ifUnused && (await g.stats()).members.length > 0) throw errors.definitionInUse('stream', name, `has consumers in group "${g.name}" (ifUnused)`)
    for (const g of own) await view.groups.delete(g.name)
    await view.catalog.deleteStream(name)
    return reply.status(204).send()
  })

  app.delete<{ Params: { exchange: string }; Querystring: { ifUnused?: string } }>('/v1/exchanges/:exchange', async (req, reply) => {
    const view = get(reply)
    const name = req.params.exchange
    const ifUnused = flag(req.query.ifUnused, 'ifUnused')
    const entry = view.catalog.exchange(name)
    if (entry === undefined) throw errors.routerUnknownExchange(name)
    if (entry.protected) throw errors.definitionProtected('exchange', name)
    const deadLetterers = view.groups.all().filter((g) => g.config.deadLetter?.kind === 'exchange' && g.config.deadLetter.exchange === name)
    if (deadLetterers.length > 0) throw errors.definitionInUse('exchange', name, `is the dead-letter exchange of group ${list(deadLetterers.map((g) => g.name))}`)
    const alternateOf = view.catalog.exchanges().filter((e) => e.config.alternate === name && e.config.name !== name)
    if (alternateOf.length > 0) throw errors.definitionInUse('exchange', name, `is the alternate exchange of ${list(alternateOf.map((e) => e.config.name))}`)
    await view.catalog.deleteExchange(name, { ifUnused })
    return reply.status(204).send()
  })

  app.delete<{ Params: { exchange: string } }>('/v1/exchanges/:exchange/bindings', async (req: FastifyRequest<{ Params: { exchange: string } }>, reply) => {
    const view = get(reply)
    const def = bindingBody(req.body, req.params.exchange)
    if (view.catalog.exchange(def.exchange) === undefined) throw errors.routerUnknownExchange(def.exchange)
    if (!(await view.catalog.unbind(def))) throw errors.badRequest(`exchange "${def.exchange}" has no such binding to ${def.stream !== undefined ? `stream "${def.stream}"` : `exchange "${def.toExchange ?? ''}"`}${def.key !== undefined ? ` with key "${def.key}"` : ''}`, { reason: 'no_such_binding' })
    return reply.status(204).send()
  })
}

/**
 * GET and POST /v1/definitions: every definition at once, in the configuration file's shape
 * (src/ingest/definitions.ts). In a scope of their own, as the import reads YAML as well as JSON.
 */
export function registerDefinitionsIo(app: FastifyInstance, get: (reply: FastifyReply) => DefinitionsView, limits: BodyLimits): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], async (req: FastifyRequest) => readBody(req.raw, limits))
    scope.addContentTypeParser('*', async (req: FastifyRequest) => {
      const type = String(req.headers['content-type'] ?? '').trim()
      if (type !== '') throw errors.unsupportedMediaType(type)
      return readBody(req.raw, limits)
    })

    scope.get<{ Querystring: { format?: string } }>('/v1/definitions', async (req, reply) => {
      const view = get(reply)
      const format = req.query.format ?? 'yaml'
      if (format !== 'yaml' && format !== 'json') throw errors.badRequest(`format must be yaml or json, not "${format}"`, { format })
      const exported = exportDefinitions(view)
      if (format === 'json') return exported
      const header = [
        ` Sluice ${serverVersion} definitions, exported ${new Date().toISOString()}.`,
        ' With a server section beside them, this is a configuration file; POST /v1/definitions imports it.',
        ' Each entry says where it comes from: the configuration file, declared at run time, or built in.',
      ].join('\n')
      return reply.type('application/yaml; charset=utf-8').header('content-disposition', 'attachment; filename="sluice-definitions.yaml"').send(definitionsYaml(exported, header))
    })

    scope.post<{ Querystring: { dryRun?: string } }>('/v1/definitions', async (req, reply) => {
      const view = get(reply)
      const dryRun = flag(req.query.dryRun, 'dryRun')
      const raw = req.body
      if (!Buffer.isBuffer(raw) || raw.length === 0) throw errors.badRequest('the body is empty; send the definitions as YAML or JSON, in the shape GET /v1/definitions writes')
      const plan = planImport(view, raw.toString('utf8'))
      if (!dryRun) await plan.apply()
      return { applied: !dryRun, changes: plan.changes, conflicts: plan.conflicts }
    })
  })
}
