import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { GroupRegistry } from '../consumers/index.js'
import { alarmNames, type Alarms } from '../flow/alarms.js'
import type { RateLimiter } from '../flow/rate-limiter.js'
import { backgroundErrors } from '../background.js'
import { limitHits } from '../limits.js'
import type { LogObserver } from '../log/index.js'
import type { ListenerCounters } from '../ingest/tcp/server.js'
import type { BrokerPublisher } from '../streams/publisher.js'
import type { Cluster } from '../cluster/index.js'
import type { StreamRegistry } from '../streams/registry.js'

/** What the scrape reads; everything is counted where it happens and read here, not pushed. */
export interface MetricSources {
  readonly publisher: BrokerPublisher
  readonly streams: StreamRegistry
  readonly groups: GroupRegistry
  readonly limiter: RateLimiter
  readonly alarms: Alarms
  readonly listeners: ReadonlyArray<{ readonly options: { readonly name: string }; readonly counters: ListenerCounters }>
  readonly ingestErrors: { readonly recorded: number; readonly dropped: number }
  /** The streams server.limits.maxStreams counts (the file's and run time's). */
  readonly catalog?: { readonly streamCount: number } | undefined
  /** Failed logins, every door (src/auth). */
  readonly auth?: { failureCounts(): Iterable<{ readonly door: string; readonly reason: string; readonly count: number }> } | undefined
  /** Cluster mode only (docs/cluster.md). */
  readonly cluster?: Cluster | undefined
  /** Refused operations of logged-in clients, every door (src/auth). */
  readonly authz?: { denialCounts(): Iterable<{ readonly door: string; readonly operation: string; readonly count: number }> } | undefined
}

// Latency buckets from 100 µs (a page-cache write) to 10 s (a stalled disk).
const latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

/** prom-client's Node gauges named *_total break Prometheus naming (promtool flags them). */
const misnamedDefaults = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

function setCounter(c: Counter<string>, labels: Record<string, string>, value: number): void {
  c.inc(labels, value)
}

/**
 * The one metrics registry. Counters and gauges are filled at scrape time from the broker's own
 * counters, so the hot path pays nothing for metrics; only the append and fsync histograms are
 * observed as they happen (once per flush, never per event). Labels are bounded: listener,
 * exchange, stream, group, reason, alarm and limit names all come from the configuration.
 */
export class Metrics {
  readonly registry = new Registry()
  #sources: MetricSources | undefined
  readonly #appendSeconds: Histogram<'stream'>
  readonly #fsyncSeconds: Histogram<'stream'>
  #forwardSeconds: Histogram<'node'> | undefined

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    for (const name of misnamedDefaults) this.registry.removeSingleMetric(name)
    this.#appendSeconds = new Histogram({ name: 'sluice_stream_append_seconds', help: 'Time from an append to its durable confirmation, per append.', labelNames: ['stream'], buckets: latencyBuckets, registers: [this.registry] })
    this.#fsyncSeconds = new Histogram({ name: 'sluice_stream_fsync_seconds', help: 'Time one fdatasync of a stream took.', labelNames: ['stream'], buckets: latencyBuckets, registers: [this.registry] })
    this.#define()
  }

  get contentType(): string {
    return this.registry.contentType
  }

  logObserver(stream: string): LogObserver {
    const append = this.#appendSeconds.labels({ stream })
    const fsync = this.#fsyncSeconds.labels({ stream })
    return {
      appended: (latencies) => {
        for (const l of latencies) append.observe(l)
      },
      synced: (seconds) => fsync.observe(seconds),
    }
  }

  /** Cluster mode: observes each forwarded append's round trip, by home node. */
  forwardObserver(): (node: string, seconds: number) => void {
    const h = (this.#forwardSeconds ??= new Histogram({ name: 'sluice_cluster_forward_seconds', help: 'Time from forwarding an append to its home node until that node confirmed it durable.', labelNames: ['node'], buckets: latencyBuckets, registers: [this.registry] }))
    return (node, seconds) => h.observe({ node }, seconds)
  }

  bind(sources: MetricSources): void {
    this.#sources = sources
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }

  #define(): void {
    const reg = [this.registry]
    const src = (): MetricSources | undefined => this.#sources
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter<string>, s: MetricSources) => void | Promise<void>): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers: reg,
        async collect() {
          const s = src()
          if (s === undefined) return
          this.reset()
          await fill(this, s)
        },
      })
    }
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, s: MetricSources) => void | Promise<void>): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: reg,
        async collect() {
          const s = src()
          if (s === undefined) return
          this.reset()
          await fill(this, s)
        },
      })
    }

    // Ingest and publish, per door and exchange.
    counter('sluice_ingest_events_total', 'Events received, by listener and exchange.', ['listener', 'exchange'], (c, s) => {
      for (const v of s.publisher.bySource.values()) setCounter(c, { listener: v.source, exchange: v.exchange }, v.events)
    })
    counter('sluice_ingest_bytes_total', 'Event body bytes received, by listener and exchange.', ['listener', 'exchange'], (c, s) => {
      for (const v of s.publisher.bySource.values()) setCounter(c, { listener: v.source, exchange: v.exchange }, v.bytes)
    })
    counter('sluice_routing_key_missing_fields_total', "Events whose routing key the exchange's template made with `_` for a field the body lacked (docs/routing.md).", ['exchange'], (c, s) => {
      for (const [exchange, n] of s.publisher.templateMisses) setCounter(c, { exchange }, n)
    })
    counter('sluice_published_events_total', 'Events by outcome: confirmed (stored durably), duplicate, unroutable (dropped by policy), rejected (refused or failed). In a cluster, counted at the node that took the publish only.', ['exchange', 'outcome'], (c, s) => {
      const by = new Map<string, { accepted: number; duplicates: number; unroutable: number; rejected: number }>()
      for (const v of s.publisher.bySource.values()) {
        // Stored here for another node, which counts it: summed over the cluster, once per event.
        if (v.source === 'cluster') continue
        const t = by.get(v.exchange) ?? { accepted: 0, duplicates: 0, unroutable: 0, rejected: 0 }
        t.accepted += v.accepted
        t.duplicates += v.duplicates
        t.unroutable += v.unroutable
        t.rejected += v.rejected
        by.set(v.exchange, t)
      }
      for (const [exchange, t] of by) {
        setCounter(c, { exchange, outcome: 'confirmed' }, t.accepted)
        setCounter(c, { exchange, outcome: 'duplicate' }, t.duplicates)
        setCounter(c, { exchange, outcome: 'unroutable' }, t.unroutable)
        setCounter(c, { exchange, outcome: 'rejected' }, t.rejected)
      }
    })

    // Streams.
    gauge('sluice_stream_events', 'Events held by a stream (between its first and last offset).', ['stream'], (g, s) => {
      for (const st of s.streams.all()) {
        const x = st.log.stats()
        g.set({ stream: st.name }, x.endOffset - x.startOffset)
      }
    })
    gauge('sluice_stream_bytes', 'Bytes of segment files held by a stream.', ['stream'], (g, s) => {
      for (const st of s.streams.all()) g.set({ stream: st.name }, st.log.stats().bytes)
    })
    gauge('sluice_stream_segments', 'Segment files of a stream.', ['stream'], (g, s) => {
      for (const st of s.streams.all()) g.set({ stream: st.name }, st.log.stats().segments)
    })
    gauge('sluice_stream_first_offset', 'First offset a stream still holds.', ['stream'], (g, s) => {
      for (const st of s.streams.all()) g.set({ stream: st.name }, st.log.startOffset)
    })
    gauge('sluice_stream_last_offset', 'Last durable offset of a stream (-1 when empty).', ['stream'], (g, s) => {
      for (const st of s.streams.all()) g.set({ stream: st.name }, st.log.endOffset - 1)
    })
    counter('sluice_stream_appended_events_total', 'Events appended to a stream since it was created.', ['stream'], (c, s) => {
      for (const st of s.streams.all()) setCounter(c, { stream: st.name }, st.log.endOffset)
    })
    counter('sluice_stream_write_errors_total', 'Writes or syncs of a stream that failed (disk full, I/O error) and were rolled back.', ['stream'], (c, s) => {
      for (const st of s.streams.all()) setCounter(c, { stream: st.name }, st.log.counters.writeErrors)
    })
    gauge('sluice_segment_files_open', 'Descriptors on segment files: write (one per stream, its active segment) and read (the pool for sealed segments).', ['kind'], (g, s) => {
      const f = s.streams.files.stats()
      g.set({ kind: 'write' }, f.writeHandles)
      g.set({ kind: 'read' }, f.readHandles)
    })
    counter('sluice_segment_file_opens_total', 'Read handles the segment file pool opened; a fast rise means server.limits.maxOpenSegmentFiles is small for the readers.', [], (c, s) => setCounter(c, {}, s.streams.files.stats().opens))

    // Counts of things, each bounded by a limit (server.limits.maxStreams, maxGroups, maxConsumers).
    gauge('sluice_streams', 'Streams declared in the file or at run time (the built-in ingest-errors not counted), as server.limits.maxStreams counts them.', [], (g, s) => {
      g.set({}, s.catalog?.streamCount ?? s.streams.all().length)
    })
    gauge('sluice_groups', 'Consumer groups, as server.limits.maxGroups counts them.', [], (g, s) => g.set({}, s.groups.all().length))
    gauge('sluice_consumers', 'Consumers across all groups (AMQP consumers, HTTP fetch consumers within their session), as server.limits.maxConsumers counts them.', [], (g, s) => g.set({}, s.groups.members.count))

    // Groups.
    const groupStats = async (s: MetricSources) => Promise.all(s.groups.all().map((g) => g.stats()))
    gauge('sluice_group_backlog_events', 'Unsettled events of a group, in flight and parked included.', ['group', 'stream'], async (g, s) => {
      for (const x of await groupStats(s)) g.set({ group: x.name, stream: x.stream }, x.backlog)
    })
    gauge('sluice_group_lag_seconds', 'Age of the oldest unsettled event of a group (0 when none).', ['group', 'stream'], async (g, s) => {
      for (const x of await groupStats(s)) g.set({ group: x.name, stream: x.stream }, x.lagSeconds)
    })
    gauge('sluice_group_in_flight', 'Events delivered and not yet settled.', ['group'], async (g, s) => {
      for (const x of await groupStats(s)) g.set({ group: x.name }, x.inFlight)
    })
    gauge('sluice_group_parked', 'Poison events parked in a group without a dead-letter target.', ['group'], async (g, s) => {
      for (const x of await groupStats(s)) g.set({ group: x.name }, x.parked)
    })
    gauge('sluice_group_members', 'Members of a group seen within its session timeout.', ['group'], async (g, s) => {
      for (const x of await groupStats(s)) g.set({ group: x.name }, x.members.length)
    })
    for (const [field, help] of [
      ['delivered', 'Deliveries made by a group, redeliveries included.'],
      ['acked', 'Events acked (settled) in a group.'],
      ['nacked', 'Events nacked in a group.'],
      ['redelivered', 'Deliveries that were redeliveries.'],
      ['ackTimeouts', 'Deliveries whose ackTimeout expired.'],
    ] as const) {
      const name = `sluice_group_${field === 'ackTimeouts' ? 'ack_timeouts' : field}_total`
      counter(name, help, ['group'], async (c, s) => {
        for (const x of await groupStats(s)) setCounter(c, { group: x.name }, x[field])
      })
    }
    counter('sluice_group_dead_lettered_total', 'Events a group dead-lettered (or parked), by reason.', ['group', 'reason'], async (c, s) => {
      for (const x of await groupStats(s)) for (const [reason, n] of Object.entries(x.deadLettered)) setCounter(c, { group: x.name, reason }, n)
    })

    // Flow control and limits.
    counter('sluice_rate_limited_total', 'Publishes refused by an ingest rate limit, by rule.', ['rule'], (c, s) => {
      for (const [rule, n] of s.limiter.refusedByRule) setCounter(c, { rule }, n)
    })
    gauge('sluice_rate_limit_sources', 'Sources (users, API keys or addresses) holding their own buckets, by rule with `per`.', ['rule'], (g, s) => {
      for (const [rule, n] of s.limiter.sourceCounts()) g.set({ rule }, n)
    })
    counter('sluice_rate_limit_evictions_total', "Sources forgotten, least recently used first, to keep a rule under its maxSources (they start again with full buckets).", ['rule'], (c, s) => {
      for (const [rule, n] of s.limiter.evictedByRule) setCounter(c, { rule }, n)
    })
    gauge('sluice_alarm', 'Whether a resource alarm is up (1) and publishers blocked.', ['alarm'], (g, s) => {
      const up = new Set(s.alarms.active().map((a) => a.name))
      for (const name of alarmNames) g.set({ alarm: name }, up.has(name) ? 1 : 0)
    })
    // Cluster mode only: every series is absent on a single node. Node labels are bounded by the
    // cluster's size.
    gauge('sluice_cluster_member', "This node's membership: 1 for the state it is in (joining, member, fenced, stopped).", ['state'], (g, s) => {
      if (s.cluster === undefined) return
      for (const state of ['joining', 'member', 'fenced', 'stopped'] as const) g.set({ state }, s.cluster.node.state === state ? 1 : 0)
    })
    gauge('sluice_cluster_controller', 'Whether this node is the elected controller (1).', [], (g, s) => {
      if (s.cluster !== undefined) g.set(s.cluster.node.isController ? 1 : 0)
    })
    gauge('sluice_cluster_nodes', 'Nodes with a live lease, as this node sees them.', [], (g, s) => {
      if (s.cluster !== undefined) g.set(s.cluster.status().nodes.length)
    })
    gauge('sluice_cluster_streams_placed', 'Streams placed on each node, as this node sees them.', ['node'], (g, s) => {
      if (s.cluster === undefined) return
      for (const n of s.cluster.status().nodes) g.set({ node: n.id }, n.streams)
    })
    gauge('sluice_cluster_lease_keepalive_age_seconds', "Seconds since etcd last renewed this node's lease; past the TTL the node fences itself.", [], (g, s) => {
      const ms = s.cluster?.status().lease.sinceKeepaliveMs
      if (ms !== undefined && ms !== null) g.set(ms / 1000)
    })
    counter('sluice_cluster_fences_total', 'Times this node fenced itself, cut off from etcd.', [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.node.counters.fences)
    })
    counter('sluice_cluster_elections_total', 'Controller elections this node won.', [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.node.counters.elections)
    })
    counter('sluice_cluster_etcd_requests_total', 'Round trips to etcd, by operation and outcome (ok, error).', ['op', 'outcome'], (c, s) => {
      for (const [op, r] of s.cluster?.node.etcdRoundTrips() ?? []) {
        setCounter(c, { op, outcome: 'ok' }, r.ok)
        setCounter(c, { op, outcome: 'error' }, r.error)
      }
    })
    counter('sluice_cluster_etcd_request_seconds_total', 'Time spent in round trips to etcd, by operation; divided by the requests, the average.', ['op'], (c, s) => {
      for (const [op, r] of s.cluster?.node.etcdRoundTrips() ?? []) setCounter(c, { op }, r.seconds)
    })
    counter('sluice_cluster_forwards_total', 'Appends forwarded to the home node of a stream, by node and outcome (ok, error).', ['node', 'outcome'], (c, s) => {
      for (const [node, f] of s.cluster?.forwarder.stats ?? []) {
        setCounter(c, { node, outcome: 'ok' }, f.ok)
        setCounter(c, { node, outcome: 'error' }, f.error)
      }
    })
    counter('sluice_cluster_forwarded_events_total', 'Events stored on other nodes through forwarding, by node.', ['node'], (c, s) => {
      for (const [node, f] of s.cluster?.forwarder.stats ?? []) setCounter(c, { node }, f.events)
    })
    counter('sluice_cluster_moves_total', 'Stream moves this node ran as controller, by outcome (moved, failed).', ['outcome'], (c, s) => {
      if (s.cluster === undefined) return
      setCounter(c, { outcome: 'moved' }, s.cluster.mover.counters.moved)
      setCounter(c, { outcome: 'failed' }, s.cluster.mover.counters.failed)
    })
    counter('sluice_cluster_moved_events_total', 'Events this node copied to other nodes, handing streams over.', [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.mover.counters.events)
    })
    gauge('sluice_cluster_handovers', 'Streams being handed over to or from this node now; their publishes wait.', [], (g, s) => {
      if (s.cluster !== undefined) g.set(s.cluster.mover.handovers().length)
    })
    gauge('sluice_cluster_under_replicated_streams', 'Streams led here with fewer replicas in sync than placed.', [], (g, s) => {
      if (s.cluster !== undefined) g.set(s.cluster.replicator.underReplicated())
    })
    counter('sluice_cluster_isr_changes_total', 'In-sync set changes this node asked for as leader, by change (shrink, expand).', ['change'], (c, s) => {
      if (s.cluster === undefined) return
      setCounter(c, { change: 'shrink' }, s.cluster.replicator.counters.shrinks)
      setCounter(c, { change: 'expand' }, s.cluster.replicator.counters.expands)
    })
    counter('sluice_cluster_failovers_total', 'Leaders this node replaced with an in-sync follower, as controller.', [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.node.counters.failovers)
    })
    counter('sluice_cluster_unclean_elections_total', 'Leaders this node made from outside the in-sync set, as controller (cluster.replication.uncleanElection).', [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.node.counters.uncleanElections)
    })
    counter('sluice_cluster_replication_bytes_total', "Bytes of batches this node fetched as a follower from streams' leaders.", [], (c, s) => {
      if (s.cluster !== undefined) setCounter(c, {}, s.cluster.replicator.counters.bytes)
    })
    gauge('sluice_cluster_replica_lag_events', "Events a follower is behind the leader's end, for each stream led here.", ['stream', 'node'], (g, s) => {
      if (s.cluster === undefined) return
      for (const l of s.cluster.replicator.lag()) g.set({ stream: l.stream, node: l.node }, l.events)
    })
    counter('sluice_alarms_raised_total', 'Times a resource alarm was raised.', [], (c, s) => setCounter(c, {}, s.alarms.raisedTotal))
    counter('sluice_limit_hits_total', 'Times a named limit refused, cut or held something back.', ['limit'], (c) => {
      for (const [name, n] of limitHits) setCounter(c, { limit: name }, n)
    })
    // Labels are bounded: door and reason are fixed words in the code, never a username or address.
    counter('sluice_auth_failures_total', 'Failed logins, by door and reason (unknown_user, bad_password, bad_api_key, loopback_only, throttled, malformed, no_credentials, address).', ['door', 'reason'], (c, s) => {
      for (const f of s.auth?.failureCounts() ?? []) setCounter(c, { door: f.door, reason: f.reason }, f.count)
    })
    // operation is a name from the one table (src/auth/operations.ts): bounded too.
    counter('sluice_auth_denials_total', 'Operations refused to a logged-in client for want of a permission or tag, by door and operation.', ['door', 'operation'], (c, s) => {
      for (const d of s.authz?.denialCounts() ?? []) setCounter(c, { door: d.door, operation: d.operation }, d.count)
    })
    counter('sluice_background_errors_total', 'Failures caught in timers and callbacks nobody awaits (alarm probes, retention, flushes), by task.', ['task'], (c) => {
      for (const [task, n] of backgroundErrors) setCounter(c, { task }, n)
    })

    // Listeners.
    gauge('sluice_connections', 'Open connections, by listener.', ['listener'], (g, s) => {
      for (const l of s.listeners) g.set({ listener: l.options.name }, l.counters.connections)
    })
    counter('sluice_connections_total', 'Connections accepted, by listener.', ['listener'], (c, s) => {
      for (const l of s.listeners) setCounter(c, { listener: l.options.name }, l.counters.connectionsTotal)
    })
    counter('sluice_tls_handshake_failures_total', 'TLS handshakes that failed, by listener: no or a bad client certificate, a TLS version under minVersion, a timeout, not TLS at all.', ['listener'], (c, s) => {
      for (const l of s.listeners) setCounter(c, { listener: l.options.name }, l.counters.tlsHandshakeFailures)
    })
    counter('sluice_ingest_parse_errors_total', 'Frames or lines a listener could not parse (kept in ingest-errors).', ['listener'], (c, s) => {
      for (const l of s.listeners) setCounter(c, { listener: l.options.name }, l.counters.parseErrors)
    })
    counter('sluice_ingest_dropped_total', 'Messages dropped by a listener (UDP over its queue, no backpressure there).', ['listener'], (c, s) => {
      for (const l of s.listeners) setCounter(c, { listener: l.options.name }, l.counters.dropped)
    })
    counter('sluice_ingest_errors_recorded_total', 'Records written to the ingest-errors stream.', [], (c, s) => setCounter(c, {}, s.ingestErrors.recorded))
  }
}
