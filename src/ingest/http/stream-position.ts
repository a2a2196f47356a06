import { errors } from '../../errors.js'
import type { Log } from '../../log/index.js'

/**
 * Where a read of a stream starts, from a `from` query parameter: `earliest` (or nothing), `latest`,
 * an offset, or an ISO 8601 time (the first event at or after it). Below the stream's start it is
 * the start: retention took the rest. `end`: where `latest` is, when clients may not read the whole
 * log yet (a replicated stream's high watermark).
 */
export async function startOffset(log: Log, f: string | undefined, end = log.endOffset): Promise<number> {
  let from: number
  if (f === undefined || f === '' || f === 'earliest') from = log.startOffset
  else if (f === 'latest') from = end
  else if (/^\d+$/.test(f)) {
    from = Number(f)
    // Past the end is a client's mistake (a stale or foreign offset), not an empty read; the end
    // itself is where a follower waits.
    if (from > log.endOffset) throw errors.logOffsetOutOfRange(from, log.startOffset, log.endOffset)
  } else if (/^-\d+$/.test(f)) {
    throw errors.badRequest(`from ${f} is negative; offsets start at 0 (the stream's first is ${log.startOffset})`, { from: f })
  } else {
    const t = Date.parse(f)
    if (Number.isNaN(t)) throw errors.badRequest(`from "${f}" is neither an offset, an ISO 8601 time, "earliest" nor "latest"`, { from: f })
    from = await log.offsetForTime(t)
  }
  return Math.max(from, log.startOffset)
}
