// Who may use the HTTP door: every request is authenticated (HTTP Basic, an API key as a Bearer
// token, or anonymous from loopback) and every route asks the one Authorizer, with the operation
// from the one table (src/auth/operations.ts). /healthz and /readyz stay open so orchestrators can
// probe; /metrics needs tag monitoring unless server.http.openMetrics.
//
// Checks run in onRequest, before the body is read: a refused publish costs no body parse, and
// body.ts drains what the client still sends. The one route whose resources are in its body
// (PUT /v1/groups/{group} names the group's stream) is checked in preHandler instead.

import { clusterAuthHeader, forwardedUserHeader, verifyForwarded } from '../../auth/forwarded.js'
import { isForwardedRoute } from './cluster-forward.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator, Authorizer, Denial, Identity, LoginResult, Operation, Resource, ResourcesOf } from '../../auth/index.js'
import type { Config } from '../../config/index.js'
import { errors, type SluiceError } from '../../errors.js'
import type { DoorName } from './doors.js'

export interface HttpAccess {
  readonly authenticator: Authenticator
  readonly authorizer: Authorizer
  /** server.http.openMetrics: /metrics for everyone. */
  readonly openMetrics: boolean
  /** The door as sluice_auth_failures_total and sluice_auth_denials_total name it; default `http`. */
  readonly door?: string | undefined
  /**
   * Who a request without credentials is. Default: guest from loopback under `anonymous:
   * loopback`. OTLP/HTTP's own listener gives its `user` or the client certificate's, as the stream
   * doors do; undefined refuses the request with 401.
   */
  readonly anonymous?: ((req: FastifyRequest) => Identity | undefined) | undefined
  /**
   * Cluster mode: a group request whose `x-sluice-cluster-auth` is signed with cluster.secret
   * (src/auth/forwarded.ts) was forwarded by another node, which authenticated its client: it
   * acts as the user named in `x-sluice-forwarded-user`, without credentials of its own.
   */
  readonly clusterSecret?: string | undefined
}

/** What a 401 offers, as RFC 9110 asks: both schemes the door takes. */
export const wwwAuthenticate = 'Basic realm="sluice", Bearer'

type Params = Readonly<Record<string, string>>

/** What a check may need beyond the request: the configuration, for the exchange a door publishes to. */
interface RuleContext {
  /** undefined while the broker recovers (the routes answer 503 then). */
  readonly config: () => Config | undefined
}

interface Rule {
  readonly operation: Operation
  /** `body`: checked once the body is read (preHandler), since the resources are named there. */
  readonly phase: 'request' | 'body'
  readonly check: (authorizer: Authorizer, identity: Identity, params: Params, body: unknown, context: RuleContext) => Denial | undefined
}

const exchange = (name: string | undefined): Resource => ({ kind: 'exchange', name: name ?? '' })
const stream = (name: string | undefined): Resource => ({ kind: 'stream', name: name ?? '' })
const group = (name: string | undefined): Resource => ({ kind: 'group', name: name ?? '' })

function rule<O extends Operation>(operation: O, resources: (p: Params) => ResourcesOf<O>): Rule {
  return { operation, phase: 'request', check: (authorizer, identity, p) => authorizer.authorize(identity, operation, resources(p)) }
}

/**
 * A door's publish (OTLP, Loki, Elasticsearch bulk): write on the exchange its configuration names.
 * A door that is off or has no exchange stores nothing; its route answers 404 (503 while recovering).
 */
function doorPublish(door: DoorName): Rule {
  return {
    operation: 'publish',
    phase: 'request',
    check: (authorizer, identity, _p, _body, context) => {
      const name = context.config()?.server[door].exchange
      return name === undefined || name === null ? undefined : authorizer.authorize(identity, 'publish', { exchange: exchange(name) })
    },
  }
}

/** What agents ask before they publish (the Elasticsearch handshake and probes): any user who logs in. */
const doorProbe = rule('door.probe', () => ({}))

/**
 * PUT /v1/groups/{group}: configure on the group and read on the stream it reads (a group is a way
 * to read that stream), and write on a dead-letter target it names. A body without a stream is
 * refused by the route itself (400); only the group is checked for it.
 */
const declareGroup: Rule = {
  operation: 'group.declare',
  phase: 'body',
  check: (authorizer, identity, p, body) => {
    const def = parseObject(body)
    const g = group(p.group)
    if (typeof def?.stream !== 'string') {
      if (authorizer.can(identity, 'configure', g)) return undefined
      return { operation: 'group.declare', permission: 'configure', resource: g, message: `user "${identity.username}" has no configure permission on group "${g.name}" (group.declare)` }
    }
    const denied = authorizer.authorize(identity, 'group.declare', { group: g, stream: stream(def.stream) })
    if (denied !== undefined) return denied
    const dl = parseObject(def.deadLetter)
    if (typeof dl?.stream === 'string') return authorizer.authorize(identity, 'group.deadLetter', { target: stream(dl.stream) })
    if (typeof dl?.exchange === 'string') return authorizer.authorize(identity, 'group.deadLetter', { target: exchange(dl.exchange) })
    return undefined
  },
}

/** DELETE /v1/exchanges/{exchange}/bindings: the destination is named in the body, as for an AMQP unbind. */
const unbind: Rule = {
  operation: 'bind',
  phase: 'body',
  check: (authorizer, identity, p, body) => {
    const def = parseObject(body)
    const destination = typeof def?.stream === 'string' ? stream(def.stream) : exchange(typeof def?.toExchange === 'string' ? def.toExchange : '')
    return authorizer.authorize(identity, 'bind', { source: exchange(p.exchange), destination })
  },
}

/**
 * Every /v1 route and every door route, by method and fastify's route pattern. A /v1 route missing
 * here is refused to all but administrators.
 */
export const httpRules: Readonly<Record<string, Rule>> = {
  'POST /v1/exchanges/:exchange/publish': rule('publish', (p) => ({ exchange: exchange(p.exchange) })),
  'GET /v1/exchanges': rule('exchanges.list', () => ({})),
  'GET /v1/overview': rule('overview', () => ({})),
  'GET /v1/cluster': rule('overview', () => ({})),
  'POST /v1/cluster/streams/:stream/move': rule('cluster.move', () => ({})),
  'GET /v1/streams': rule('streams.list', () => ({})),
  'GET /v1/streams/:stream': rule('stream.view', (p) => ({ stream: stream(p.stream) })),
  'GET /v1/streams/:stream/events': rule('stream.read', (p) => ({ stream: stream(p.stream) })),
  'POST /v1/streams/:stream/redrive': rule('stream.redrive', (p) => ({ stream: stream(p.stream) })),
  'GET /v1/groups': rule('groups.list', () => ({})),
  'GET /v1/groups/:group': rule('group.view', (p) => ({ group: group(p.group) })),
  'PUT /v1/groups/:group': declareGroup,
  'POST /v1/groups/:group/fetch': rule('consume', (p) => ({ group: group(p.group) })),
  'GET /v1/groups/:group/consume': rule('consume', (p) => ({ group: group(p.group) })),
  'POST /v1/groups/:group/ack': rule('consume', (p) => ({ group: group(p.group) })),
  'POST /v1/groups/:group/nack': rule('consume', (p) => ({ group: group(p.group) })),
  'POST /v1/groups/:group/extend': rule('consume', (p) => ({ group: group(p.group) })),
  'POST /v1/groups/:group/reset': rule('group.reset', (p) => ({ group: group(p.group) })),
  'GET /v1/groups/:group/parked': rule('group.parked.read', (p) => ({ group: group(p.group) })),
  'POST /v1/groups/:group/parked/redrive': rule('group.parked.redrive', (p) => ({ group: group(p.group) })),
  'DELETE /v1/groups/:group/parked': rule('group.parked.purge', (p) => ({ group: group(p.group) })),
  'DELETE /v1/groups/:group': rule('group.delete', (p) => ({ group: group(p.group) })),
  'DELETE /v1/streams/:stream': rule('queue.delete', (p) => ({ queue: stream(p.stream) })),
  'DELETE /v1/exchanges/:exchange': rule('exchange.delete', (p) => ({ exchange: exchange(p.exchange) })),
  'DELETE /v1/exchanges/:exchange/bindings': unbind,
  // What the management UI asks besides (src/ingest/http/ui-routes.ts).
  'GET /v1/whoami': rule('whoami', () => ({})),
  'GET /v1/overview/rates': rule('overview', () => ({})),
  'POST /v1/exchanges/:exchange/route': rule('exchange.route', (p) => ({ exchange: exchange(p.exchange) })),
  'GET /v1/streams/:stream/search': rule('stream.read', (p) => ({ stream: stream(p.stream) })),
  'GET /v1/streams/:stream/tail': rule('stream.read', (p) => ({ stream: stream(p.stream) })),
  'GET /v1/streams/:stream/dead-letters': rule('stream.view', (p) => ({ stream: stream(p.stream) })),
  'GET /v1/groups/:group/lag': rule('group.view', (p) => ({ group: group(p.group) })),
  'GET /v1/users': rule('users.manage', () => ({})),
  'GET /v1/definitions': rule('definitions', () => ({})),
  'POST /v1/definitions': rule('definitions', () => ({})),
  // The doors for other ecosystems' agents (src/ingest/http/doors.ts).
  'POST /v1/logs': doorPublish('otlp'),
  'POST /loki/api/v1/push': doorPublish('loki'),
  'POST /_bulk': doorPublish('elasticsearch'),
  'POST /:index/_bulk': doorPublish('elasticsearch'),
  'GET /': doorProbe,
  'GET /_license': doorProbe,
  'GET /_xpack': doorProbe,
  'GET /_cluster/health': doorProbe,
  'GET /_index_template/:name': doorProbe,
  'PUT /_index_template/:name': doorProbe,
  'GET /_template/:name': doorProbe,
  'PUT /_template/:name': doorProbe,
  'HEAD /:index': doorProbe,
}

const metricsRule = rule('metrics', () => ({}))
// The API's description shows no data, so tools may read it before they log in.
const openPaths = new Set(['/healthz', '/readyz', '/v1/openapi.json'])

const identities = new WeakMap<FastifyRequest['raw'], Identity>()
const routesSeen = new WeakMap<FastifyInstance, Set<string>>()

/** The identity a request was authenticated as; undefined for the open routes. */
export function requestIdentity(req: FastifyRequest): Identity | undefined {
  return identities.get(req.raw)
}

/** Routes registered on the app, but the open ones, with no rule in httpRules (a test keeps this empty). */
export function routesWithoutRule(app: FastifyInstance): string[] {
  return [...(routesSeen.get(app) ?? [])].filter((key) => httpRules[key] === undefined)
}

/**
 * Registers the checks; call before the routes, so every route is seen. `config` gives the doors'
 * settings (undefined while the broker recovers).
 */
export function installAccess(app: FastifyInstance, access: HttpAccess, config: () => Config | undefined = () => undefined): void {
  const context: RuleContext = { config }
  const seen = new Set<string>()
  routesSeen.set(app, seen)
  app.addHook('onRoute', (route) => {
    if (openPaths.has(route.url) || route.url === '/metrics') return
    // A HEAD fastify adds beside a GET is checked as that GET (ruleOf).
    for (const method of [route.method].flat()) if (method !== 'HEAD' || route.url === '/:index') seen.add(`${method} ${route.url}`)
  })

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?', 1)[0] ?? ''
    if (openPaths.has(path)) return
    const isMetrics = path === '/metrics'
    if (isMetrics && access.openMetrics) return
    // Not a route (404), or an open one: nothing to guard.
    if (!isMetrics && ruleOf(req) === undefined) return
    const identity = await authenticate(req, reply, access)
    identities.set(req.raw, identity)
    if (isMetrics) return authorize(access, metricsRule.check(access.authorizer, identity, {}, undefined, context))
    const found = ruleOf(req)
    if (found === undefined) return // not a route: the 404 handler answers
    if (found === 'missing') {
      // A route added without a rule is closed to all but administrators until it gets one.
      if (identity.tags.has('administrator')) return
      throw errors.forbidden(`user "${identity.username}" may not use ${req.method} ${req.routeOptions.url ?? ''}: the route has no permission rule (administrators only)`, 'administrator', { kind: 'broker', name: req.routeOptions.url ?? '' })
    }
    if (found.phase === 'request') authorize(access, found.check(access.authorizer, identity, req.params as Params, undefined, context))
  })

  app.addHook('preHandler', async (req) => {
    const found = ruleOf(req)
    if (found === undefined || found === 'missing' || found.phase !== 'body') return
    const identity = identities.get(req.raw)
    if (identity === undefined) return // onRequest refused it already
    authorize(access, found.check(access.authorizer, identity, req.params as Params, req.body, context))
  })
}

function ruleOf(req: FastifyRequest): Rule | 'missing' | undefined {
  const url = req.routeOptions.url
  if (url === undefined) return undefined
  const found = httpRules[`${req.method} ${url}`] ?? (req.method === 'HEAD' ? httpRules[`GET ${url}`] : undefined)
  if (found !== undefined) return found
  return url.startsWith('/v1/') ? 'missing' : undefined
}

function authorize(access: HttpAccess, denied: Denial | undefined): void {
  if (denied === undefined) return
  access.authorizer.refused(access.door ?? 'http', denied)
  throw errors.forbidden(denied.message, denied.permission, denied.resource)
}

function refused(reply: FastifyReply, e: SluiceError): SluiceError {
  void reply.header('www-authenticate', wwwAuthenticate)
  return e
}

async function authenticate(req: FastifyRequest, reply: FastifyReply, access: HttpAccess): Promise<Identity> {
  const { authenticator } = access
  const ctx = { door: access.door ?? 'http', remote: req.raw.socket.remoteAddress ?? '' }
  const asserted = req.headers[clusterAuthHeader]
  if (asserted !== undefined) {
    const user = req.headers[forwardedUserHeader]
    const secret = access.clusterSecret
    // Only the routes a node forwards take a vouched-for user; no other route ever does.
    const ok = secret !== undefined && typeof asserted === 'string' && typeof user === 'string' && isForwardedRoute(req.method, req.routeOptions.url ?? '') && verifyForwarded(asserted, secret, req.method, req.url, user)
    const identity = ok ? authenticator.identityFor(user, 'cluster') : undefined
    if (identity === undefined) {
      authenticator.refuse(ctx, 'malformed')
      throw refused(reply, errors.unauthenticated('a forwarded request needs the cluster secret and a configured user'))
    }
    return identity
  }
  const header = req.headers.authorization
  if (header === undefined || header.trim() === '') {
    if (access.anonymous !== undefined) {
      // The listener's own rules decide, and count their refusals.
      const identity = access.anonymous(req)
      if (identity !== undefined) return identity
      throw refused(reply, errors.unauthenticated('this request needs credentials (HTTP Basic or Authorization: Bearer <API key>): the listener names no user for requests without them, or that user may not publish here'))
    }
    const anonymous = authenticator.anonymous(ctx)
    if (anonymous !== undefined) return anonymous
    authenticator.refuse(ctx, 'no_credentials')
    throw refused(reply, errors.unauthenticated('this request needs credentials: HTTP Basic (user:password) or Authorization: Bearer <API key>'))
  }
  const space = header.indexOf(' ')
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase()
  const value = space < 0 ? '' : header.slice(space + 1).trim()
  let result: LoginResult
  if (scheme === 'basic' && /^[A-Za-z0-9+/]+={0,2}$/.test(value)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    result = colon < 0 ? authenticator.refuse(ctx, 'malformed') : await authenticator.authenticatePassword(decoded.slice(0, colon), decoded.slice(colon + 1), ctx)
  } else if (scheme === 'bearer' && value !== '') {
    result = await authenticator.authenticateApiKey(value, ctx)
  } else {
    result = authenticator.refuse(ctx, 'malformed')
  }
  if (result.ok) return result.identity
  if (result.reason === 'malformed') throw refused(reply, errors.unauthenticated('the Authorization header is neither "Basic <base64 of user:password>" nor "Bearer <API key>"'))
  if (result.retryAfterMs !== undefined) throw refused(reply, errors.unauthenticated('too many logins from this address are waiting; retry later', result.retryAfterMs))
  throw refused(reply, errors.unauthenticated('the credentials were refused'))
}

function parseObject(value: unknown): Record<string, unknown> | undefined {
  let v = value
  if (Buffer.isBuffer(v)) {
    try {
      v = JSON.parse(v.toString('utf8'))
    } catch {
      return undefined
    }
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
}
