/**
 * Per-event TTL: the publish path turns a TTL (AMQP `expiration`) into this header, an absolute time in ms, so the clock starts when the event
 * is stored, as RabbitMQ's per-message TTL does, whatever the event's own timestamp says.
 */
export const expiresAtHeader = 'x-expires-at'
/** What a dead-lettered event keeps of its TTL: it must not expire again in the target. */
export const originalExpiresAtHeader = 'x-original-expires-at'
/** Longest per-event TTL accepted, as RabbitMQ's (2^32 − 1 ms, about 49 days). */
export const eventTtlMsMax = 2 ** 32 - 1

/** A TTL in whole milliseconds, as AMQP's `expiration` carries it (digits) or as a JSON number; undefined when it is not one. */
export function parseTtl(v: unknown): number | undefined {
  const ms = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : Number.NaN
  return Number.isSafeInteger(ms) && ms >= 0 && ms <= eventTtlMsMax ? ms : undefined
}
