// A short human summary of a valid configuration, printed by `sluice validate`, so an operator
// can see the pipeline the file describes rather than re-reading the YAML.

import type { BindingConfig, Config, DeadLetterConfig, GroupConfig, ListenerConfig, StartPosition } from './types.js'
import { formatDuration, formatSize } from './units.js'

const usersShownMax = 10

/** Who may log in, and whether a loopback client without credentials is let in (as guest). */
function authLine(config: Config): string {
  const { users, apiKeys, anonymous } = config.auth
  const shown = users.slice(0, usersShownMax).map((u) => {
    const notes = [...u.tags, ...(u.loopbackOnly ? ['loopback only'] : [])]
    return notes.length === 0 ? u.username : `${u.username} (${notes.join(', ')})`
  })
  if (users.length > usersShownMax) shown.push(`and ${users.length - usersShownMax} more`)
  const guest = users.some((u) => u.username === 'guest')
  const anon = anonymous === 'loopback' && guest ? 'loopback clients without credentials act as guest' : 'every client must log in'
  return `auth: users ${shown.length === 0 ? 'none' : shown.join(', ')}; ${apiKeys.length} API key(s); ${anon}`
}

export function summarizeConfig(config: Config): string {
  const { server } = config
  const lines: string[] = []
  lines.push(`data dir ${server.dataDir}; fsync ${server.durability.fsync}${server.durability.fsync === 'batch' ? ` every ${formatDuration(server.durability.intervalMs)}` : ''}`)
  const all = server.listeners
  const listeners = [
    ...all.http.map((l) => listener('http', l)),
    ...all.ndjson.map((l) => listener('ndjson', l, l.exchange)),
    ...all.amqp.map((l) => listener('amqp', l)),
    ...all.syslog.map((l) => listener('syslog', l, l.exchange, l.tls === null && l.udp ? ' tcp+udp' : '')),
    ...all.forward.map((l) => listener('forward', l, l.exchange)),
    ...all.gelf.map((l) => listener('gelf', l, l.exchange, l.tls === null && l.udp ? ' tcp+udp' : '')),
  ].filter((text) => text !== '')
  lines.push(`listeners: ${listeners.length === 0 ? 'none' : listeners.join(', ')}`)
  lines.push(authLine(config))

  const exchanges = Object.values(config.exchanges)
  lines.push(`exchanges (${exchanges.length}):`)
  for (const e of exchanges) {
    const extras = [
      e.routingKey === null ? '' : `key ${e.routingKey}`,
      e.alternate === null ? `unroutable ${e.unroutable}` : `alternate ${e.alternate}`,
      e.dedup === null ? '' : `dedup ${e.dedup} (${formatDuration(e.dedupWindowMs)})`,
    ].filter((text) => text !== '')
    lines.push(`  ${e.name}: ${e.type}${extras.length > 0 ? `, ${extras.join(', ')}` : ''}`)
  }

  const streams = Object.values(config.streams)
  lines.push(`streams (${streams.length}):`)
  for (const s of streams) {
    const age = s.retention.maxAgeMs === null ? 'forever' : formatDuration(s.retention.maxAgeMs)
    const size = s.retention.maxBytes === null ? '' : ` / ${formatSize(s.retention.maxBytes)}`
    const interest = s.retention.policy === 'interest' ? ', until every group has settled' : ''
    lines.push(`  ${s.name}: keep ${age}${size}${interest}; fsync ${s.fsync}`)
  }

  lines.push(`bindings (${config.bindings.length}):`)
  for (const b of config.bindings) lines.push(`  ${binding(b, config)}`)

  const groups = Object.values(config.groups)
  lines.push(`groups (${groups.length}):`)
  for (const g of groups) lines.push(`  ${group(g)}`)

  if (config.rateLimits.length > 0) {
    lines.push(`rate limits (${config.rateLimits.length}):`)
    for (const r of config.rateLimits) {
      const match = Object.entries(r.match)
        .filter(([, value]) => value !== null)
        .map(([key, value]) => `${key}=${String(value)}`)
      const limits = [r.eventsPerSec === null ? '' : `${r.eventsPerSec} events/s`, r.bytesPerSec === null ? '' : `${formatSize(r.bytesPerSec)}/s`]
      lines.push(`  ${match.length === 0 ? 'everyone' : match.join(' ')}: ${limits.filter((t) => t !== '').join(', ')}${r.burstEvents === null ? '' : `, burst ${r.burstEvents}`}${r.per === null ? '' : `, per ${r.per} (at most ${r.maxSources})`}`)
    }
  }
  return lines.join('\n')
}

function listener(name: string, l: ListenerConfig, exchange?: string | null, extra = ''): string {
  if (!l.enabled || exchange === null) return ''
  const tls = l.tls === null ? '' : ` tls${l.tls.clientAuth === 'none' ? '' : ` (client certificate ${l.tls.clientAuth})`}`
  return `${name} ${l.host}:${l.port}${tls}${extra}${exchange === undefined ? '' : ` → ${exchange}`}`
}

function binding(b: BindingConfig, config: Config): string {
  const type = config.exchanges[b.exchange]?.type
  let how = ''
  if (type === 'headers') {
    const pairs = Object.entries(b.headers).map(([k, v]) => `${k}=${v}`)
    how = ` [${b.match}: ${pairs.join(', ')}]`
  } else if (type !== 'fanout') {
    how = ` [${b.key}]`
  }
  return `${b.exchange}${how} → ${b.destination.kind} ${b.destination.name}`
}

function group(g: GroupConfig): string {
  const parts = [
    g.dispatch,
    `${g.ackMode} ack`,
    `prefetch ${g.prefetch}`,
    g.maxDeliveries === 0 ? 'unlimited deliveries' : `max ${g.maxDeliveries} deliveries`,
    `from ${start(g.start)}`,
  ]
  if (g.messageTtlMs !== null) parts.push(`ttl ${formatDuration(g.messageTtlMs)}`)
  if (g.maxBacklog !== null) parts.push(`backlog ${g.maxBacklog} then ${g.overflow}`)
  if (g.maxBacklogBytes !== null) parts.push(`backlog ${formatSize(g.maxBacklogBytes)} then ${g.overflow}`)
  if (g.deliveryRatePerSec !== null) parts.push(`${g.deliveryRatePerSec}/s`)
  parts.push(`dead-letter ${deadLetter(g.deadLetter)}`)
  return `${g.name} on ${g.stream}: ${parts.join(', ')}`
}

function deadLetter(dl: DeadLetterConfig | null): string {
  if (dl === null) return 'parked in the group'
  if (dl.kind === 'stream') return `→ stream ${dl.stream}`
  return `→ exchange ${dl.exchange}${dl.routingKey === null ? '' : ` [${dl.routingKey}]`}`
}

function start(s: StartPosition): string {
  switch (s.kind) {
    case 'earliest':
    case 'latest':
    case 'last':
      return s.kind
    case 'offset':
      return `offset ${s.offset}`
    case 'time':
      return new Date(s.timeMs).toISOString()
  }
}
