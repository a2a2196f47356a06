import { createServer } from 'node:http'
import { fastify, type FastifyInstance } from 'fastify'
import { errors, SluiceError } from '../../errors.js'
import type { Metrics } from '../../metrics/index.js'
import { registerRoutes, type BrokerView } from './routes.js'

export interface HttpDeps {
  /** undefined until recovery has finished: /readyz and the data routes answer 503 until then. */
  readonly getBroker: () => BrokerView | undefined
  readonly metrics: Metrics
  readonly maxBodyBytes: number
  readonly maxEventBytes: number
  readonly requestTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly maxInFlightRequests: number
}

/** Maps fastify's and zlib's own failures onto the one error shape. */
function toSluiceError(err: unknown, maxBodyBytes: number): SluiceError {
  if (err instanceof SluiceError) return err
  const e = err as { statusCode?: number; code?: string; message?: string }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return errors.bodyTooLarge(maxBodyBytes + 1, maxBodyBytes)
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) return errors.unsupportedMediaType('')
  if (e.code === 'Z_DATA_ERROR' || e.code === 'Z_BUF_ERROR') return errors.badRequest(`the gzip body cannot be decoded: ${e.message ?? ''}`)
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return errors.badRequest(e.message ?? 'bad request')
  return errors.internal(err)
}

export function buildHttpApp(deps: HttpDeps, onInternalError: (err: unknown) => void): FastifyInstance {
  const app = fastify({
    logger: false,
    bodyLimit: deps.maxBodyBytes,
    // While closing, the routes answer 503 not_ready themselves (with Retry-After).
    return503OnClosing: false,
    requestTimeout: deps.requestTimeoutMs,
    keepAliveTimeout: deps.keepAliveTimeoutMs,
    // Node checks header and request deadlines on a sweep (30 s by default); a one-second sweep
    // makes a slow-loris client go close to its deadline, not up to 30 s later.
    serverFactory: (handler) =>
      createServer({ headersTimeout: deps.headersTimeoutMs, requestTimeout: deps.requestTimeoutMs, connectionsCheckingInterval: 1000, keepAliveTimeout: deps.keepAliveTimeoutMs }, handler),
  })

  // Requests being served: past the limit a request is refused at once rather than queued.
  let inFlight = 0
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/')) return
    if (inFlight >= deps.maxInFlightRequests) throw errors.overloaded(inFlight, deps.maxInFlightRequests)
    inFlight++
    ;(req as { counted?: boolean }).counted = true
  })
  app.addHook('onResponse', async (req) => {
    if ((req as { counted?: boolean }).counted === true) inFlight--
  })
  app.addHook('onRequestAbort', async (req) => {
    if ((req as { counted?: boolean }).counted === true) {
      ;(req as { counted?: boolean }).counted = false
      inFlight--
    }
  })

  app.setErrorHandler((err, _req, reply) => {
    const e = toSluiceError(err, deps.maxBodyBytes)
    if (e.status >= 500 && e.code === 'SLUICE_ERR_INTERNAL') onInternalError(err)
    // Retry-After from what the refusal computed (a bucket's refill, an alarm's check period).
    const retryAfterMs = typeof e.details?.retryAfterMs === 'number' ? e.details.retryAfterMs : undefined
    if (retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))))
    else if ((e.status === 503 || e.status === 429) && !reply.hasHeader('retry-after')) void reply.header('retry-after', '1')
    return reply.status(e.status).send(e.toJSON())
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errors.notFound(req.method, req.url).toJSON()))

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
    return { status: 'ready' }
  })
  registerRoutes(app, deps.getBroker, { maxEventBytes: deps.maxEventBytes })
  return app
}
