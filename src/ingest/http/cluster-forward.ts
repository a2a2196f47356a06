// Cluster mode: a group is served by the node its stream lives on, since that node alone holds
// the stream and the group's state; so is a read of the stream, since only there is it whole and
// held below its high watermark. Another node that takes such a request has already
// authenticated and authorised the client; it passes the request on to the home node's HTTP
// listener as that user (vouched for by the cluster secret) and streams the answer back
// unchanged, so tags, long polls, tails and consume streams work as if the client had connected
// to the home itself.

import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { HttpHome } from '../../cluster/index.js'
import { clusterAuthHeader, forwardedUserHeader, signForwarded } from '../../auth/forwarded.js'
import { errors, type SluiceError } from '../../errors.js'

/** The group routes a group's home node serves; another node forwards them there. */
export const forwardedRoutes: ReadonlySet<string> = new Set(['/v1/groups/:group/fetch', '/v1/groups/:group/ack', '/v1/groups/:group/nack', '/v1/groups/:group/extend', '/v1/groups/:group/consume'])

/** The stream routes (method and path) a stream's home node serves; another node forwards them there. */
export const forwardedStreamRoutes: ReadonlySet<string> = new Set([
  'GET /v1/streams/:stream',
  'GET /v1/streams/:stream/events',
  'GET /v1/streams/:stream/search',
  'GET /v1/streams/:stream/tail',
  'GET /v1/streams/:stream/dead-letters',
  'POST /v1/streams/:stream/redrive',
])

/** True for a route (its method and path pattern) that another node may forward here for a user. */
export function isForwardedRoute(method: string, route: string): boolean {
  return forwardedRoutes.has(route) || forwardedStreamRoutes.has(`${method} ${route}`)
}

/**
 * `copy=local` on a stream's view or events: this node's own copy as stored, neither forwarded to
 * the stream's leader nor held below its high watermark. For checking a replica; what it shows
 * past the watermark a failover may take back.
 */
export function localCopy(query: unknown): boolean {
  const copy = (query as { copy?: unknown } | undefined)?.copy
  if (copy === undefined) return false
  if (copy !== 'local') throw errors.badRequest('copy may only be "local": this node\'s own copy of the stream', { copy: String(copy) })
  return true
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) }
/** What of the home's answer reaches the client: its body's type and the hints to retry. */
const passedBack = ['content-type', 'retry-after', 'cache-control', 'x-accel-buffering'] as const

function answer(reply: FastifyReply, e: SluiceError): void {
  const raw = reply.raw
  if (raw.headersSent) {
    raw.destroy()
    return
  }
  raw.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', ...(e.retryable ? { 'retry-after': '1' } : {}) })
  raw.end(JSON.stringify(e.toJSON()))
}

/**
 * Hands the request to `home` as `user`; the client gets the home's answer, or 503
 * stream_unavailable if it cannot be reached. `idleMs`: a home silent this long is given up (a
 * long poll answers within its wait, a consume stream sends a line every 15 s).
 */
export function forwardToHome(req: FastifyRequest, reply: FastifyReply, home: HttpHome, stream: string, user: string, secret: string, idleMs: number, closing: AbortSignal): void {
  // The group routes read their bodies themselves, so the body is still the bytes the client sent.
  const raw: unknown = req.body
  const body = req.method === 'GET' || raw === undefined || raw === null ? undefined : Buffer.isBuffer(raw) ? raw : Buffer.from(typeof raw === 'string' ? raw : JSON.stringify(raw))
  const headers: Record<string, string | number> = { [clusterAuthHeader]: signForwarded(secret, req.method, req.url, user), [forwardedUserHeader]: user, accept: req.headers.accept ?? '*/*' }
  if (body !== undefined) {
    headers['content-type'] = req.headers['content-type'] ?? 'application/json'
    headers['content-length'] = body.length
  }
  reply.hijack()
  const send = home.tls ? httpsRequest : httpRequest
  const up = send({ host: home.host, port: home.port, method: req.method, path: req.url, headers, agent: home.tls ? agents.https : agents.http, servername: home.tls ? home.host : undefined })
  up.setTimeout(idleMs, () => up.destroy(new Error(`no answer for ${idleMs} ms`)))
  up.on('response', (res) => {
    const out: Record<string, string | string[]> = {}
    for (const h of passedBack) {
      const v = res.headers[h]
      if (v !== undefined) out[h] = v
    }
    reply.raw.writeHead(res.statusCode ?? 502, out)
    // A consume stream's headers go now, not with its first delivery: the client waits on them.
    reply.raw.flushHeaders()
    // The home dying mid-answer ends only `res`: the client's answer is cut too, not left open.
    res.on('close', () => {
      if (!res.complete) reply.raw.destroy()
    })
    res.pipe(reply.raw)
  })
  up.on('error', (err) => answer(reply, errors.streamUnavailable(stream, `its home node ${home.node} could not be reached (${err.message})`, home.node)))
  // A client that goes away, or this node stopping, ends the request at the home too: a long
  // poll or a consume stream there must not hold deliveries for nobody.
  const end = (): void => void up.destroy()
  closing.addEventListener('abort', end, { once: true })
  reply.raw.on('close', () => {
    closing.removeEventListener('abort', end)
    if (!reply.raw.writableFinished) end()
  })
  up.end(body)
}
