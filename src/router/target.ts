import type { RoutingTable } from './tables.js'
import type { BindingDef, ExchangeDef, RouteResult } from './types.js'

// Bindings point at target objects rather than names so a route never does a name lookup per
// matched binding. `mark` holds the number of the last route that reached the target: comparing it
// with the current route's number dedups streams and stops exchange cycles without a Set per call.

export const streamKind = 0
export const exchangeKind = 1

export interface StreamTarget {
  readonly kind: typeof streamKind
  readonly name: string
  mark: number
  /** Bindings pointing here; the target is forgotten when the last one goes. */
  refs: number
}

export interface ExchangeNode {
  readonly kind: typeof exchangeKind
  readonly name: string
  readonly def: Readonly<ExchangeDef>
  readonly table: RoutingTable
  /** Shared, frozen answer for events this exchange cannot place, so that path allocates nothing. */
  readonly unroutableResult: RouteResult
  mark: number
}

export type Target = StreamTarget | ExchangeNode

export interface CompiledBinding {
  readonly id: string
  readonly def: Readonly<BindingDef>
  readonly target: Target
}

/**
 * Scratch state for one route, reused across calls. Safe because route() is synchronous and never
 * calls out of the router, so no two routes can interleave on one Router.
 */
export class Collector {
  epoch = 0
  /** Set when the exchange being processed matched any binding, even one to an already-seen target. */
  matched = false
  streams: string[] | null = null
  readonly work: ExchangeNode[] = []

  add(target: Target): void {
    this.matched = true
    if (target.mark === this.epoch) return
    target.mark = this.epoch
    if (target.kind === streamKind) (this.streams ??= []).push(target.name)
    else this.work.push(target)
  }

  addAll(bindings: readonly CompiledBinding[]): void {
    for (let i = 0; i < bindings.length; i++) this.add(bindings[i]!.target)
  }
}
