// Checks that span keys: names that must exist, either/or pairs, and routes that loop. They run
// even when single keys were invalid, so one start lists everything; an invalid value is
// undefined at this point (whatever its type says) and is skipped here, its problem already
// reported.

import { childPath, didYouMean, type Pos, type Problems } from './problems.js'
import type { NameKind } from './spec.js'
import type { Validated } from './validate.js'
import { compilePattern, parseKeyHash, parsePasswordHash, sha256 } from '../auth/secrets.js'
import { defaultGuest } from './build.js'
import { checkDoorUsers } from './door-users.js'

const kindWords: Readonly<Record<NameKind, string>> = { exchange: 'exchange', stream: 'stream', group: 'group', apiKey: 'API key' }

export function checkReferences(v: Validated, problems: Problems): void {
  const at = (path: string): Pos | undefined => v.positions.get(path)
  const declared = new Map<NameKind, Set<string>>()
  for (const use of v.declared) {
    const names = declared.get(use.kind) ?? new Set<string>()
    // Names in mappings are unique already (the YAML parser rejects duplicate keys); names in
    // lists (API keys) are not.
    if (names.has(use.name)) problems.add(use.path, use.pos, `${kindWords[use.kind]} name ${JSON.stringify(use.name)} is already used`)
    names.add(use.name)
    declared.set(use.kind, names)
  }
  for (const use of v.references) {
    const names = declared.get(use.kind) ?? new Set<string>()
    if (!names.has(use.name)) {
      const where = use.kind === 'apiKey' ? ' in auth.apiKeys' : ''
      problems.add(use.path, use.pos, `no ${kindWords[use.kind]} named ${JSON.stringify(use.name)}${where}${didYouMean(use.name, names)}`)
    }
  }
  checkAuth(v, problems, at)
  checkDoorUsers(v, problems)
  checkBindings(v, problems, at)
  checkGroups(v, problems, at)
  checkRateLimits(v, problems, at)
  checkAlternateCycles(v, problems, at)
  checkCounts(v, problems, at)
  checkCluster(v, problems, at)
}

function checkCluster(v: Validated, problems: Problems, at: At): void {
  const secret = (v.raw.cluster as typeof v.raw.cluster | undefined)?.secret
  if (typeof secret === 'string' && secret.length < 16) problems.add('cluster.secret', at('cluster.secret'), 'is too short: at least 16 characters (e.g. the output of `openssl rand -hex 24`)')
  const replication = (v.raw.cluster as typeof v.raw.cluster | undefined)?.replication
  if (typeof replication?.factor === 'number' && typeof replication.minInSync === 'number' && replication.minInSync > replication.factor) {
    problems.add('cluster.replication.minInSync', at('cluster.replication.minInSync'), `is ${replication.minInSync}, more than cluster.replication.factor (${replication.factor}): no stream could take a publish`)
  }
  const prefix = (v.raw.cluster as typeof v.raw.cluster | undefined)?.etcd?.prefix
  if (typeof prefix !== 'string') return
  const path = 'cluster.etcd.prefix'
  // Every key is the prefix, "/" and a path: one spelling per cluster, so /sluice/ and /sluice
  // cannot name the same keys differently.
  if (!prefix.startsWith('/') || prefix.endsWith('/') || prefix.includes('//')) problems.add(path, at(path), `${JSON.stringify(prefix)} must start with "/", not end with "/", and have no empty part, e.g. /sluice/prod`)
}

/** server.limits.maxStreams and maxGroups bound the file's declarations too, not only run time's. */
function checkCounts(v: Validated, problems: Problems, at: At): void {
  // `limits: 5` is reported already and leaves nothing to compare with.
  const limits = (v.raw.server as typeof v.raw.server | null)?.limits as typeof v.raw.server.limits | null | undefined
  const counts = [
    { section: 'streams', what: 'streams', n: Object.keys(v.raw.streams).length, key: 'maxStreams', max: limits?.maxStreams },
    { section: 'groups', what: 'groups', n: Object.keys(v.raw.groups).length, key: 'maxGroups', max: limits?.maxGroups },
  ] as const
  for (const c of counts) {
    if (typeof c.max !== 'number' || c.n <= c.max) continue
    problems.add(c.section, at(c.section), `${c.n} ${c.what} are declared, over server.limits.${c.key} (${c.max}); raise the limit or declare fewer`)
  }
}

type At = (path: string) => Pos | undefined

function checkAuth(v: Validated, problems: Problems, at: At): void {
  // `auth: 5` is reported already and leaves no section to check.
  const auth = v.raw.auth as typeof v.raw.auth | null
  if (auth === null) return
  const usernames = new Set<string>()
  // Absent, the users are the built-in guest (build.ts).
  const users = auth.users ?? [defaultGuest]
  users.forEach((user, i) => {
    if (user === null) return
    const userPath = childPath('auth.users', i)
    if (typeof user.username === 'string') {
      const path = childPath(userPath, 'username')
      if (usernames.has(user.username)) problems.add(path, at(path), `user ${JSON.stringify(user.username)} is declared twice`)
      usernames.add(user.username)
    }
    const hasPassword = user.password !== null
    const hasHash = user.passwordHash !== null
    if (hasPassword && hasHash) problems.add(userPath, at(userPath), 'set `password` or `passwordHash`, not both')
    else if (!hasPassword && !hasHash) problems.add(userPath, at(userPath), 'needs a `password` (use ${ENV}) or a `passwordHash` (from `sluice passwd`)')
    if (typeof user.passwordHash === 'string') {
      const parsed = parsePasswordHash(user.passwordHash)
      const path = childPath(userPath, 'passwordHash')
      // The hash is not quoted: it is as good as the password to an offline attack.
      if ('problem' in parsed) problems.add(path, at(path), parsed.problem)
    }
    const permissions = user.permissions as typeof user.permissions | null | undefined
    if (typeof permissions === 'object' && permissions !== null) {
      for (const kind of ['configure', 'write', 'read'] as const) {
        const pattern = permissions[kind]
        if (typeof pattern !== 'string') continue
        try {
          compilePattern(pattern)
        } catch (err) {
          const path = childPath(childPath(userPath, 'permissions'), kind)
          problems.add(path, at(path), `${JSON.stringify(pattern)} is not a regular expression: ${(err as Error).message}`)
        }
      }
    }
  })
  const digests = new Set<string>()
  auth.apiKeys.forEach((apiKey, i) => {
    if (apiKey === null) return
    const keyPath = childPath('auth.apiKeys', i)
    const hasKey = apiKey.key !== null
    const hasHash = apiKey.keyHash !== null
    if (hasKey && hasHash) problems.add(keyPath, at(keyPath), 'set `key` or `keyHash`, not both')
    else if (!hasKey && !hasHash) problems.add(keyPath, at(keyPath), 'needs a `key` (use ${ENV}) or a `keyHash` (from `sluice passwd --api-key`)')
    let digest: string | undefined
    let path = childPath(keyPath, 'key')
    if (typeof apiKey.key === 'string') digest = sha256(apiKey.key).toString('hex')
    else if (typeof apiKey.keyHash === 'string') {
      path = childPath(keyPath, 'keyHash')
      const parsed = parseKeyHash(apiKey.keyHash)
      if (Buffer.isBuffer(parsed)) digest = parsed.toString('hex')
      else problems.add(path, at(path), parsed.problem)
    }
    // The secret itself is never echoed into a message that ends up in logs.
    if (digest !== undefined && digests.has(digest)) problems.add(path, at(path), 'this API key is declared twice')
    if (digest !== undefined) digests.add(digest)
    if (typeof apiKey.user === 'string' && !usernames.has(apiKey.user)) {
      const userPath = childPath(keyPath, 'user')
      const where = auth.users === null ? ' (with auth.users left out, the only user is guest)' : ' in auth.users'
      problems.add(userPath, at(userPath), `no user named ${JSON.stringify(apiKey.user)}${where}${didYouMean(apiKey.user, usernames)}`)
    }
  })
}

function checkBindings(v: Validated, problems: Problems, at: At): void {
  const edges: Edge[] = []
  v.raw.bindings.forEach((binding, i) => {
    if (binding === null) return
    const path = childPath('bindings', i)
    const hasStream = binding.stream !== null && binding.stream !== undefined
    const hasExchange = binding.toExchange !== null && binding.toExchange !== undefined
    if (hasStream && hasExchange) {
      problems.add(path, at(path), 'a binding has either `stream` or `toExchange`, not both')
    } else if (binding.stream === null && binding.toExchange === null) {
      problems.add(path, at(path), 'a binding needs a destination: `stream` or `toExchange`')
    }
    const source = typeof binding.exchange === 'string' ? v.raw.exchanges[binding.exchange] : undefined
    if (source === undefined || source === null || typeof source.type !== 'string') return
    if (source.type === 'topic' && typeof binding.key === 'string') {
      const bad = binding.key.split('.').find((word) => /[*#]/.test(word) && word !== '*' && word !== '#')
      if (bad !== undefined) {
        const keyPath = childPath(path, 'key')
        problems.add(keyPath, at(keyPath), `topic binding key ${JSON.stringify(binding.key)}: "*" and "#" must be whole words between dots, not ${JSON.stringify(bad)}`)
      }
    }
    if (source.type !== 'headers' && binding.headers !== undefined && Object.keys(binding.headers).length > 0) {
      const headersPath = childPath(path, 'headers')
      problems.add(headersPath, at(headersPath), `exchange ${JSON.stringify(binding.exchange)} is ${source.type}, so these headers would be ignored; only headers exchanges match on headers`)
    }
    if (hasExchange && !hasStream && typeof binding.toExchange === 'string') {
      edges.push({ from: binding.exchange, to: binding.toExchange, path })
    }
  })
  for (const cycle of findCycles(edges)) {
    const last = cycle[cycle.length - 1]
    if (last === undefined) continue
    const route = [...cycle.map((e) => e.from), last.to].join(' → ')
    problems.add(last.path, at(last.path), `exchange-to-exchange bindings form a cycle: ${route}; an event would be routed forever`)
  }
}

function checkGroups(v: Validated, problems: Problems, at: At): void {
  for (const [name, group] of Object.entries(v.raw.groups)) {
    if (group === null) continue
    const path = childPath('groups', name)
    const backoff = group.retryBackoff
    if (backoff !== null && typeof backoff.initial === 'number' && typeof backoff.max === 'number' && backoff.max < backoff.initial) {
      const maxPath = childPath(childPath(path, 'retryBackoff'), 'max')
      problems.add(maxPath, at(maxPath), 'is below retryBackoff.initial')
    }
    const dl = group.deadLetter
    if (dl === null) continue
    const dlPath = childPath(path, 'deadLetter')
    if (dl.stream !== null && dl.exchange !== null && dl.stream !== undefined && dl.exchange !== undefined) {
      problems.add(dlPath, at(dlPath), 'set `stream` or `exchange` (with `routingKey`), not both')
    } else if (dl.stream === null && dl.exchange === null) {
      problems.add(dlPath, at(dlPath), 'set a dead-letter target: `{ stream }` or `{ exchange, routingKey }`')
    }
    if (dl.stream !== null && dl.stream !== undefined && dl.routingKey !== null && dl.routingKey !== undefined) {
      const keyPath = childPath(dlPath, 'routingKey')
      problems.add(keyPath, at(keyPath), 'applies only to a dead-letter `exchange`; a stream takes events as they are')
    }
    if (typeof dl.stream === 'string' && dl.stream === group.stream) {
      const streamPath = childPath(dlPath, 'stream')
      problems.add(streamPath, at(streamPath), `is the group's own stream; dead-lettered events would come straight back to the group`)
    }
  }
}

function checkRateLimits(v: Validated, problems: Problems, at: At): void {
  v.raw.rateLimits.forEach((rule, i) => {
    if (rule === null) return
    if (rule.events === null && rule.bytes === null) {
      const path = childPath('rateLimits', i)
      problems.add(path, at(path), 'a rate limit needs `events`, `bytes` or both')
    }
  })
}

function checkAlternateCycles(v: Validated, problems: Problems, at: At): void {
  const edges: Edge[] = []
  for (const [name, exchange] of Object.entries(v.raw.exchanges)) {
    if (typeof exchange?.alternate === 'string') edges.push({ from: name, to: exchange.alternate, path: childPath(childPath('exchanges', name), 'alternate') })
  }
  for (const cycle of findCycles(edges)) {
    const last = cycle[cycle.length - 1]
    if (last === undefined) continue
    const route = [...cycle.map((e) => e.from), last.to].join(' → ')
    problems.add(last.path, at(last.path), `alternate exchanges form a cycle: ${route}; an unroutable event would never settle`)
  }
}

interface Edge {
  readonly from: string
  readonly to: string
  readonly path: string
}

/**
 * Cycles found by one depth-first search: each edge that leads back onto the current path closes
 * one cycle, reported as its edges in order. Every looping group of exchanges yields at least one
 * cycle, and the search is linear however the bindings fan out.
 */
export function findCycles(edges: readonly Edge[]): Edge[][] {
  const adjacency = new Map<string, Edge[]>()
  for (const edge of edges) adjacency.set(edge.from, [...(adjacency.get(edge.from) ?? []), edge])
  const done = new Set<string>()
  const onPath = new Set<string>()
  const path: Edge[] = []
  const cycles: Edge[][] = []
  const visit = (node: string): void => {
    onPath.add(node)
    for (const edge of adjacency.get(node) ?? []) {
      path.push(edge)
      if (onPath.has(edge.to)) cycles.push(path.slice(path.findIndex((e) => e.from === edge.to)))
      else if (!done.has(edge.to)) visit(edge.to)
      path.pop()
    }
    onPath.delete(node)
    done.add(node)
  }
  // Sorted starts make the reported cycle the same from run to run.
  for (const start of [...adjacency.keys()].sort()) if (!done.has(start)) visit(start)
  return cycles
}
