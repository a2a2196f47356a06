// Cluster mode: how one node vouches, on another node's HTTP listener, for a client it has
// authenticated (src/ingest/http/cluster-forward.ts). The request carries the user's name and an
// HMAC of the request under the cluster secret, never the secret itself, so a copy of a forwarded
// request (a proxy's log) is good for that one request, for that user, for a short while.

import { createHmac, timingSafeEqual } from 'node:crypto'

export const clusterAuthHeader = 'x-sluice-cluster-auth'
export const forwardedUserHeader = 'x-sluice-forwarded-user'

/** How far apart two nodes' clocks and a request's trip may put its stamp. */
const maxSkewMs = 30_000

function mac(secret: string, method: string, path: string, user: string, stamp: number): Buffer {
  return createHmac('sha256', secret).update(`${method}\n${path}\n${user}\n${stamp}`).digest()
}

/** The `x-sluice-cluster-auth` value for one request: `v1.<ms since epoch>.<hex HMAC>`. */
export function signForwarded(secret: string, method: string, path: string, user: string, now = Date.now()): string {
  return `v1.${now}.${mac(secret, method, path, user, now).toString('hex')}`
}

/** True when `value` was made by signForwarded with this secret, for this request, recently. */
export function verifyForwarded(value: string, secret: string, method: string, path: string, user: string, now = Date.now()): boolean {
  const m = /^v1\.(\d{1,16})\.([0-9a-f]{64})$/.exec(value)
  if (m === null) return false
  const stamp = Number(m[1])
  if (Math.abs(now - stamp) > maxSkewMs) return false
  return timingSafeEqual(Buffer.from(m[2]!, 'hex'), mac(secret, method, path, user, stamp))
}
