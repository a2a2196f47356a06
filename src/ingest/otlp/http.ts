// OTLP/HTTP on a listener of its own (server.otlp.http, 4318), for exporters that default to that
// port. It is an HTTP listener like the API's (src/ingest/http/app.ts: the same deadlines, bounds,
// TLS and error shape) with one route, the otlp door's `POST /v1/logs` (src/ingest/http/doors.ts);
// every other path answers 404. Who may publish follows both kinds of door: a request that logs
// in (Basic, Bearer) is its login, as on the API's listener; one that does not is the listener's
// `user` or its client certificate's, from the `allow` list, as on the stream doors.

import type { Server as NetServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { HttpListenerConfig, LimitsConfig, OtlpHttpConfig } from '../../config/index.js'
import type { Logger } from '../../logger.js'
import type { DoorAccess } from '../door-access.js'
import { installAccess, type HttpAccess } from '../http/access.js'
import { buildHttpShell, httpListenerView, requestPeerCertificate } from '../http/app.js'
import { registerDoors } from '../http/doors.js'
import type { BrokerView } from '../http/routes.js'
import { clientAddress } from '../http/slots.js'
import { listenIpv6Loopback, primaryHost } from '../tcp/loopback.js'
import type { ConnectionBudget, IngestListener, ListenerCounters } from '../tcp/server.js'
import type { TlsReloader } from '../tcp/tls.js'

export interface OtlpHttpDeps {
  readonly config: OtlpHttpConfig
  /** server.http: the deadlines and connection and request bounds this listener shares. */
  readonly http: HttpListenerConfig
  readonly limits: LimitsConfig
  /** undefined while the broker recovers or stops: the route answers 503 with Retry-After. */
  readonly getBroker: () => BrokerView | undefined
  readonly access: Omit<HttpAccess, 'door' | 'anonymous' | 'openMetrics'>
  /** The listener's `allow` and `user`, as a stream door's. */
  readonly doorAccess: DoorAccess
  readonly logger: Logger
  readonly budget?: ConnectionBudget | undefined
  readonly tlsReloader?: TlsReloader | undefined
  readonly onInternalError: (err: unknown) => void
}

export class OtlpHttpListener implements IngestListener {
  readonly options = { name: 'otlp-http' }
  readonly counters: ListenerCounters
  readonly tls: boolean
  readonly #app: FastifyInstance
  readonly #twins: NetServer[] = []
  #port = 0

  constructor(private readonly deps: OtlpHttpDeps) {
    const { config, http, limits, doorAccess } = deps
    // server.http's bounds on this listener's own address and certificate; no UI, no /metrics here.
    const entry: HttpListenerConfig = { ...http, enabled: config.enabled, host: config.host, port: config.port, tls: config.tls, ui: false, openMetrics: false }
    const { app, body } = buildHttpShell(
      { name: 'otlp-http', http: entry, limits, budget: deps.budget, tlsReloader: deps.tlsReloader, admit: (socket) => doorAccess.admit(clientAddress(socket)) },
      deps.onInternalError,
    )
    this.#app = app
    const view = httpListenerView(app)
    this.counters = view.counters
    this.tls = view.tls === true
    installAccess(
      app,
      {
        ...deps.access,
        door: 'otlp-http',
        openMetrics: false,
        anonymous: (req) => doorAccess.identity(req.raw.socket.remoteAddress, requestPeerCertificate(req)),
      },
      () => deps.getBroker()?.config,
    )
    registerDoors(app, deps.getBroker, { ...body, maxEventBytes: limits.maxEventBytes, maxEventsPerRequest: limits.maxEventsPerRequest, maxEventDepth: limits.maxEventDepth }, ['otlp'])
  }

  get port(): number {
    return this.#port
  }

  async listen(): Promise<void> {
    const { host, port } = this.deps.config
    await this.#app.listen({ host: primaryHost(host), port })
    const a = this.#app.server.address()
    this.#port = typeof a === 'object' && a !== null ? a.port : port
    const twin = await listenIpv6Loopback(this.#app.server, { host, port: this.#port, name: 'otlp-http', logger: this.deps.logger })
    if (twin !== undefined) this.#twins.push(twin)
    this.deps.logger.info({ listener: 'otlp-http', address: `${host}:${this.#port}`, tls: this.tls }, 'listener up')
  }

  /** Requests under way finish (their publishes are already admitted); new ones are refused. */
  async close(): Promise<void> {
    await Promise.all([...this.#twins.map((t) => new Promise<void>((r) => t.close(() => r()))), this.#app.close()])
  }
}
