import type { RetryBackoffConfig } from '../config/index.js'

/**
 * Delay before redelivery after the `count`-th delivery failed: exponential from `initial`,
 * capped at `max`, spread by ±jitter so a burst of failures does not come back as one burst.
 */
export function retryDelayMs(backoff: RetryBackoffConfig, count: number, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.multiplier ** Math.max(0, count - 1))
  const spread = base * backoff.jitter * (2 * random() - 1)
  return Math.max(0, Math.round(base + spread))
}
