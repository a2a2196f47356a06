import type { UserConfig, UserTag } from '../config/index.js'
import type { Permission } from './operations.js'
import { compilePattern } from './secrets.js'

/** How a client proved who it is. */
/** `cluster`: asserted by another node of the cluster, which authenticated the client (docs/cluster.md). */
export type AuthMethod = 'password' | 'apiKey' | 'anonymous' | 'listener' | 'certificate' | 'cluster'

/**
 * Who a client is, once its door has authenticated it: what every authorization check is made on.
 * Made only by the Authenticator, from the configuration's users, so a door cannot invent one.
 */
export interface Identity {
  readonly username: string
  readonly tags: ReadonlySet<UserTag>
  readonly method: AuthMethod
  /** The API key's name when `method` is `apiKey`: for logs and `rateLimits[].match.apiKey`. */
  readonly apiKey?: string
  /** The user's patterns, anchored; null matches nothing. */
  readonly patterns: Readonly<Record<Permission, RegExp | null>>
}

export function identityOf(user: UserConfig, method: AuthMethod, apiKey?: string): Identity {
  const compile = (p: string | null): RegExp | null => (p === null ? null : compilePattern(p))
  return Object.freeze({
    username: user.username,
    tags: new Set(user.tags),
    method,
    ...(apiKey !== undefined ? { apiKey } : {}),
    patterns: Object.freeze({ configure: compile(user.permissions.configure), write: compile(user.permissions.write), read: compile(user.permissions.read) }),
  })
}
