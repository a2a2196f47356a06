/**
 * Per-event TTL: the publish path turns a TTL (AMQP `expiration`) into this header, an absolute time in ms, so the clock starts when the event
 * is stored, as RabbitMQ's per-message TTL does, whatever the event's own timestamp says.
 */
export const expiresAtHeader = 'x-expires-at'
/** What a dead-lettered event keeps of its TTL: it must not expire again in the target. */
export const originalExpiresAtHeader = 'x-original-expires-at'
/** Longest per-event TTL accepted, as RabbitMQ's (2^32 − 1 ms, about 49 days). */
export const eventTtlMsMax = 2 ** 32 - 1
