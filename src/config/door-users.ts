// Who the doors without credentials publish as, checked when the file is read: a stream listener
// (NDJSON, syslog, GELF, Forward, OTLP/gRPC; OTLP/HTTP's fallback user) whose user could not
// write to its exchange, or that would have nobody to publish as, stops the start with the key's line instead of refusing every event later. Also the
// users that rate limits name. Under TLS `clientAuth: required` and no `user`, each client's
// certificate names its user, checked as it connects. Invalid values are undefined here, their
// problems already reported.

import { compilePattern } from '../auth/secrets.js'
import { defaultGuest } from './build.js'
import { childPath, didYouMean, type Pos, type Problems } from './problems.js'
import type { Validated } from './validate.js'

const streamDoors = [
  { key: 'ndjson', what: 'NDJSON' },
  { key: 'syslog', what: 'syslog' },
  { key: 'gelf', what: 'GELF' },
  { key: 'forward', what: 'Forward' },
] as const

interface RawUser {
  readonly username?: unknown
  readonly tags?: unknown
  readonly permissions?: { readonly write?: unknown } | null
}

interface RawDoor {
  readonly enabled?: unknown
  readonly exchange?: unknown
  readonly user?: unknown
  readonly tls?: { readonly clientAuth?: unknown } | null
}

/** Whether a user may publish to an exchange: the `publish` row of the table, read off the file. */
function canWrite(user: RawUser, exchange: string): boolean {
  if (Array.isArray(user.tags) && user.tags.includes('administrator')) return true
  const pattern = user.permissions?.write
  if (typeof pattern !== 'string') return false
  try {
    return compilePattern(pattern).test(exchange)
  } catch {
    return true // an invalid pattern is reported on its own line already
  }
}

export function checkDoorUsers(v: Validated, problems: Problems): void {
  const at = (path: string): Pos | undefined => v.positions.get(path)
  const auth = v.raw.auth as typeof v.raw.auth | null
  if (auth === null) return
  // Absent, the users are the built-in guest (build.ts).
  const users = new Map<string, RawUser>()
  for (const u of (auth.users ?? [defaultGuest]) as readonly (RawUser | null)[]) if (u !== null && typeof u.username === 'string') users.set(u.username, u)
  const where = auth.users === null ? ' (with auth.users left out, the only user is guest)' : ' in auth.users'
  const anonymous = auth.anonymous as unknown

  const server = v.raw.server as Record<string, unknown> | null | undefined
  if (server !== null && typeof server === 'object') {
    const check = (door: DoorCheck, path: string, entry: RawDoor, exchange: string): void => checkEntry({ door, path, entry, exchange, users, where, anonymous, problems, at })
    for (const door of streamDoors) {
      const entries = server[door.key]
      if (!Array.isArray(entries)) continue
      // A single mapping is reported as `server.ndjson`, a list's items as `server.ndjson[1]`.
      const listed = v.positions.has(childPath(`server.${door.key}`, 0))
      entries.forEach((entry: RawDoor | null, i) => {
        if (entry === null || entry.enabled !== true || typeof entry.exchange !== 'string') return
        check({ what: door.what, credentials: false }, listed ? childPath(`server.${door.key}`, i) : `server.${door.key}`, entry, entry.exchange)
      })
    }
    // OTLP's own listeners publish to server.otlp.exchange. gRPC calls carry no credentials Sluice
    // reads, so it is a stream door here; OTLP/HTTP requests may carry a login, so its `user` is
    // only a fallback and never required.
    const otlp = server.otlp as { enabled?: unknown; exchange?: unknown; http?: RawDoor | null; grpc?: RawDoor | null } | null | undefined
    if (otlp !== null && typeof otlp === 'object' && otlp.enabled === true && typeof otlp.exchange === 'string') {
      if (otlp.grpc?.enabled === true) check({ what: 'OTLP/gRPC', credentials: false }, 'server.otlp.grpc', otlp.grpc, otlp.exchange)
      if (otlp.http?.enabled === true) check({ what: 'OTLP/HTTP', credentials: true }, 'server.otlp.http', otlp.http, otlp.exchange)
    }
  }

  v.raw.rateLimits.forEach((rule, i) => {
    const user = (rule as { match?: { user?: unknown } | null } | null)?.match?.user
    if (typeof user !== 'string' || users.has(user)) return
    const path = childPath(childPath(childPath('rateLimits', i), 'match'), 'user')
    problems.add(path, at(path), `no user named ${JSON.stringify(user)}${where}${didYouMean(user, users.keys())}`)
  })
}

interface DoorCheck {
  /** The door as a message names it. */
  readonly what: string
  /** Its clients may log in (OTLP/HTTP's Basic or Bearer): a listener without a user is not refused. */
  readonly credentials: boolean
}

interface EntryCheck {
  readonly door: DoorCheck
  readonly path: string
  readonly entry: RawDoor
  readonly exchange: string
  readonly users: ReadonlyMap<string, RawUser>
  readonly where: string
  readonly anonymous: unknown
  readonly problems: Problems
  readonly at: (path: string) => Pos | undefined
}

/** Whether one listener entry has somebody to publish as who may write to its exchange. */
function checkEntry(c: EntryCheck): void {
  const { door, path, entry, exchange, users, where, anonymous, problems, at } = c
  const userPath = childPath(path, 'user')
  if (typeof entry.user === 'string') {
    const user = users.get(entry.user)
    if (user === undefined) problems.add(userPath, at(userPath), `no user named ${JSON.stringify(entry.user)}${where}${didYouMean(entry.user, users.keys())}`)
    else if (!canWrite(user, exchange)) problems.add(userPath, at(userPath), `user ${JSON.stringify(entry.user)} may not write to exchange ${JSON.stringify(exchange)}, so every event of this ${door.what} listener would be refused; give the user \`permissions: { write: "^${exchange}$" }\` or name another user`)
    return
  }
  if (entry.user !== null) return // invalid, and reported
  // Every client shows a verified certificate, and its CN chooses the user: no fallback to check.
  if (entry.tls?.clientAuth === 'required') return
  // Clients that log in publish as their login; the others are refused or guest, as on the HTTP listener.
  if (door.credentials) return
  if (anonymous === 'none') {
    problems.add(userPath, at(path), `the ${door.what} protocol carries no credentials, and auth.anonymous is none: name the \`user\` this listener publishes as (one with write on exchange ${JSON.stringify(exchange)})`)
    return
  }
  if (anonymous !== 'loopback') return
  // Loopback clients would publish as guest: there must be one, and it must be able to.
  const guest = users.get('guest')
  if (guest === undefined) problems.add(userPath, at(path), `no \`user\` is set, so loopback clients would publish as guest, but there is no user guest in auth.users; name the \`user\` this ${door.what} listener publishes as`)
  else if (!canWrite(guest, exchange)) problems.add(userPath, at(path), `no \`user\` is set, so loopback clients would publish as guest, and guest may not write to exchange ${JSON.stringify(exchange)}; name the \`user\` this ${door.what} listener publishes as`)
}
