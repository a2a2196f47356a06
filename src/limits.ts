/**
 * How often each named limit refused or cut something. Every limit in the configuration (and the
 * few fixed ones) counts here under its config name, and /metrics exports it as
 * sluice_limit_hits_total{limit}. A plain map: no dependency, safe to import from the core.
 */
export const limitHits = new Map<string, number>()

export function hitLimit(name: string, n = 1): void {
  limitHits.set(name, (limitHits.get(name) ?? 0) + n)
}
