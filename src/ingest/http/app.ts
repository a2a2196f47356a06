import { createServer, maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { errors, SluiceError } from '../../errors.js'
import type { HttpListenerConfig, LimitsConfig } from '../../config/index.js'
import type { Metrics } from '../../metrics/index.js'
import { newCounters, type ConnectionBudget, type ListenerCounters } from '../tcp/server.js'
import { loadTlsOptions, peerCertificate, tlsSetupFor, type PeerCertificate, type TlsReloader } from '../tcp/tls.js'
import { beginBody, drainAfterAnswer, hasBodyPending, isDraining, type BodyLimits } from './body.js'
import { installAccess, type HttpAccess } from './access.js'
import { registerRoutes, type BrokerView } from './routes.js'
import { isDoorRoute } from './doors.js'
import { installUi } from './ui.js'
import { registerUiRoutes } from './ui-routes.js'
import { clientAddress, ConnectionGuard, RequestSlots, type Ticket } from './slots.js'

/** The listeners that speak HTTP: the API's (server.http) and OTLP/HTTP's own (server.otlp.http). */
export type HttpListenerName = 'http' | 'otlp-http'

/** What every HTTP listener is built from, whatever routes it serves. */
export interface HttpShellDeps {
  /** Its label in /metrics and in TLS log lines; default `http`. */
  readonly name?: HttpListenerName | undefined
  readonly http: HttpListenerConfig
  readonly limits: LimitsConfig
  /** server.limits.maxConnections, one count shared with the other doors. */
  readonly budget?: ConnectionBudget | undefined
  /** Where an HTTPS entry's certificate is registered for reload on SIGHUP. */
  readonly tlsReloader?: TlsReloader | undefined
  /** Counters shared with the other HTTP entries' apps (`server.http` listing several); else its own. */
  readonly counters?: ListenerCounters | undefined
  /** A listener's `allow` list, checked at accept. */
  readonly admit?: ((socket: Socket) => boolean) | undefined
}

export interface HttpDeps extends HttpShellDeps {
  /** undefined until recovery has finished: /readyz and the data routes answer 503 until then. */
  readonly getBroker: () => BrokerView | undefined
  readonly metrics: Metrics
  /** Who may do what (src/auth): every /v1 route and /metrics ask it. */
  readonly access: HttpAccess
}

/** The verified client certificate of an HTTPS request (clientAuth optional or required). */
export function requestPeerCertificate(req: FastifyRequest): PeerCertificate | undefined {
  return peerCertificate(req.raw.socket)
}

/**
 * The longest name (exchange, stream, group) the configuration accepts, as in
 * src/config/validate.ts; a path segment may carry it percent-encoded, three bytes a character.
 */
export const nameMaxChars = 200
export const maxParamChars = 3 * nameMaxChars

/** The HTTP door's own counters, shown by /metrics beside the TCP listeners' (listener="http"). */
export interface HttpListenerView {
  readonly options: { readonly name: HttpListenerName }
  readonly counters: ListenerCounters
  readonly tls?: boolean
}

const views = new WeakMap<FastifyInstance, HttpListenerView>()

export function httpListenerView(app: FastifyInstance): HttpListenerView {
  return views.get(app) ?? { options: { name: 'http' }, counters: newCounters() }
}

/** Maps fastify's own failures onto the one error shape. */
function toSluiceError(err: unknown, http: HttpListenerConfig, limits: LimitsConfig): SluiceError {
  if (err instanceof SluiceError) return err
  const e = err as { statusCode?: number; code?: string; message?: string }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return errors.bodyTooLarge(limits.maxBodyBytes + 1, limits.maxBodyBytes)
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) return errors.unsupportedMediaType('')
  if (e.code === 'FST_ERR_MAX_PARAM_LENGTH' || e.statusCode === 414) return errors.uriTooLong(maxParamChars)
  if (e.code === 'FST_ERR_BAD_URL') return errors.badRequest(`the URL is not valid: ${e.message ?? ''}`, { reason: 'bad_url' })
  if (e.statusCode === 408) return errors.requestTimeout('request', 'requestTimeout', http.requestTimeoutMs)
  if (e.statusCode === 431) return errors.headersTooLarge(maxHeaderSize)
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return errors.badRequest(e.message ?? 'bad request')
  return errors.internal(err)
}

/** One answer written straight to a socket, for what Node refuses before fastify sees a request. */
function rawAnswer(socket: Socket, e: SluiceError): void {
  const body = JSON.stringify(e.toJSON())
  const head = [`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close']
  if (e.status === 503 || e.status === 429 || e.status === 408) head.push('retry-after: 1')
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`)
  // The client may keep sending; give the answer a moment to be read, then let go.
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** An HTTP listener with no routes yet: its limits, TLS, request places, error shape and 404. */
export interface HttpShell {
  readonly app: FastifyInstance
  readonly body: BodyLimits
  readonly slots: RequestSlots
  /** Aborted as the listener stops taking connections, for long polls to answer at once. */
  readonly shutdown: AbortSignal
}

/**
 * What every HTTP listener shares, whatever it serves: the server with its deadlines and TLS, the
 * connection and request bounds, the body clock and drain, and every refusal in the one error
 * shape. The API's listener and OTLP/HTTP's own add their routes to it.
 */
export function buildHttpShell(deps: HttpShellDeps, onInternalError: (err: unknown) => void): HttpShell {
  const { http, limits } = deps
  const name = deps.name ?? 'http'
  // A body has to finish within its own deadline, and that is never longer than the request's.
  const body: BodyLimits = { maxBodyBytes: limits.maxBodyBytes, bodyTimeoutMs: Math.min(http.bodyTimeoutMs, http.requestTimeoutMs), maxDrainBytes: http.maxDrainBytes }
  const tls = tlsSetupFor(name, http, deps.tlsReloader)
  let unregisterTls: (() => void) | undefined
  const app = fastify({
    logger: false,
    bodyLimit: limits.maxBodyBytes,
    // Names of up to 200 characters must reach their routes (fastify's default stops at 100).
    routerOptions: { maxParamLength: maxParamChars },
    // While closing, the routes answer 503 not_ready themselves (with Retry-After).
    return503OnClosing: false,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Node checks header and request deadlines on a sweep (30 s by default); a one-second sweep
    // makes a slow-loris client go close to its deadline, not up to 30 s later.
    serverFactory: (handler) => {
      const options = { headersTimeout: http.headersTimeoutMs, requestTimeout: http.requestTimeoutMs, connectionsCheckingInterval: 1000, keepAliveTimeout: http.keepAliveTimeoutMs }
      if (tls === undefined) return createServer(options, handler)
      // HTTPS: the handshake is held to the headers' deadline, the first thing a client owes.
      const server = createHttpsServer({ ...options, ...loadTlsOptions(tls), handshakeTimeout: http.headersTimeoutMs }, handler)
      unregisterTls = tls.reloader?.add(tls, server)
      // An https.Server serves fastify exactly as an http.Server does; only the types differ.
      return server as unknown as HttpServer
    },
    // What fastify refuses before routing (a malformed or over-long path) gets the one error shape too.
    frameworkErrors: (err, _req, reply) => {
      const e = toSluiceError(err, http, limits)
      const r = reply as unknown as FastifyReply
      void r.status(e.status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(e.toJSON()))
    },
    // And so does what Node's parser refuses: a header or request deadline, oversized headers,
    // a malformed request. A reset connection has nobody left to answer.
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      // An answer already went out and the body is being discarded: a second answer would be
      // read as the answer to a request the client never sent.
      if (isDraining(socket) || !socket.writable) {
        socket.destroy()
        return
      }
      let e: SluiceError
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        e = hasBodyPending(socket) ? errors.requestTimeout('body', 'requestTimeout', http.requestTimeoutMs) : errors.requestTimeout('headers', 'headersTimeout', http.headersTimeoutMs)
      } else if (err.code === 'HPE_HEADER_OVERFLOW') e = errors.headersTooLarge(maxHeaderSize)
      else e = errors.badRequest(`the request is not valid HTTP/1.1 (${err.code ?? err.message})`, { reason: err.code ?? 'parse_error' })
      rawAnswer(socket, e)
    },
  })

  const counts = deps.counters ?? newCounters()
  views.set(app, { options: { name }, counters: counts, tls: tls !== undefined })
  const connections = new ConnectionGuard(
    app.server,
    { limit: http.maxConnections, limitPerAddress: http.maxConnectionsPerAddress, firstRequestMs: http.headersTimeoutMs, budget: deps.budget, tls: http.tls ?? undefined, admit: deps.admit },
    counts,
  )
  app.addHook('onClose', async () => unregisterTls?.())
  let closing = false
  // Aborted as the door stops taking connections: long polls answer with what they have, so the
  // requests in flight end promptly and before the groups they wait on close.
  const shutdown = new AbortController()
  app.addHook('preClose', async () => {
    closing = true
    connections.closeUnused()
    shutdown.abort()
  })

  // Every request's body clock starts at its headers: the body deadline and the drain deadline.
  app.addHook('onRequest', async (req) => {
    connections.used(req.raw.socket)
    beginBody(req.raw, Date.now())
  })

  const slots = new RequestSlots(http.maxInFlightRequests, http.maxInFlightRequestsPerAddress)
  // Tickets still held by each connection: when it closes they all go back, including those of
  // pipelined requests whose responses never got the socket (and so never emit 'close').
  const held = new WeakMap<Socket, Set<Ticket>>()
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/v1/') && !isDoorRoute(req)) return
    const socket = req.raw.socket
    const ticket = slots.acquire(clientAddress(socket))
    if (ticket instanceof SluiceError) throw ticket
    let onSocket = held.get(socket)
    if (onSocket === undefined) {
      const set = new Set<Ticket>()
      onSocket = set
      held.set(socket, set)
      socket.once('close', () => {
        for (const t of set) t.release()
        set.clear()
      })
    }
    const tickets = onSocket
    const mine: Ticket = {
      release: () => {
        ticket.release()
        tickets.delete(mine)
      },
    }
    const release = (): void => mine.release()
    tickets.add(mine)
    // 'close' follows the answer, or the connection's end when no answer could be sent: fastify's
    // onResponse and onRequestAbort each miss one of those (an abort after the body has arrived).
    reply.raw.once('close', release)
    if (socket.destroyed) release()
  })

  // An answer sent before its body has all arrived: discard the rest before letting go (see body.ts).
  app.addHook('onSend', async (req, reply, payload) => {
    // While closing, every answer ends its connection: the server's close waits on each one.
    if (drainAfterAnswer(req.raw as IncomingMessage, body, closing) || closing) void reply.header('connection', 'close')
    else if (!req.raw.complete && !closing && reply.getHeader('connection') === 'close') reply.removeHeader('connection')
    return payload
  })

  app.setErrorHandler((err, _req, reply) => {
    const e = toSluiceError(err, http, limits)
    if (e.status >= 500 && e.code === 'SLUICE_ERR_INTERNAL') onInternalError(err)
    // Retry-After from what the refusal computed (a bucket's refill, an alarm's check period).
    const retryAfterMs = typeof e.details?.retryAfterMs === 'number' ? e.details.retryAfterMs : undefined
    if (retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))))
    else if ((e.status === 503 || e.status === 429) && !reply.hasHeader('retry-after')) void reply.header('retry-after', '1')
    return reply.status(e.status).send(e.toJSON())
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errors.notFound(req.method, req.url).toJSON()))
  return { app, body, slots, shutdown: shutdown.signal }
}

export function buildHttpApp(deps: HttpDeps, onInternalError: (err: unknown) => void): FastifyInstance {
  const { http, limits } = deps
  const { app, body, slots, shutdown } = buildHttpShell(deps, onInternalError)

  // The management UI's files need no login, and `GET /` from a browser is the UI, not the door.
  installUi(app, http.ui)
  // After the request places are taken: a login waiting its turn holds one, so waits are bounded.
  installAccess(app, deps.access, () => deps.getBroker()?.config)

  // Liveness: the process answers. Readiness: recovery is over and publishes can be confirmed.
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/metrics', async (_req, reply) => reply.header('content-type', deps.metrics.contentType).send(await deps.metrics.render()))
  app.get('/readyz', async (_req, reply) => {
    const broker = deps.getBroker()
    if (broker === undefined) return reply.status(503).header('retry-after', '1').send(errors.notReady().toJSON())
    const alarms = broker.alarms.active()
    if (alarms.length > 0) {
      const e = errors.alarm(alarms.map((a) => a.name), 5000)
      return reply.status(503).header('retry-after', '5').send({ error: { code: e.wireCode, message: e.message, details: { alarms } } })
    }
    // Every request place taken: the door refuses every /v1 request right now.
    if (slots.full) {
      const message = `${slots.inFlight} requests are being served, at server.http.maxInFlightRequests (${slots.limit}); /v1 requests are refused`
      return reply.status(503).header('retry-after', '1').send({ error: { code: 'overloaded', message, details: { inFlight: slots.inFlight, limit: 'maxInFlightRequests', limitRequests: slots.limit } } })
    }
    return { status: 'ready' }
  })
  registerRoutes(app, deps.getBroker, { ...body, maxEventBytes: limits.maxEventBytes, maxEventsPerRequest: limits.maxEventsPerRequest, maxEventDepth: limits.maxEventDepth }, shutdown)
  registerUiRoutes(app, deps.getBroker, shutdown)
  return app
}
