import type { AppendRecord, AppendResult, Log } from '../log/index.js'

/** A log batch must fit in a segment; a large write is appended as several batches. */
export const appendBytesMax = 8 * 1024 * 1024

function estimatedBytes(r: AppendRecord): number {
  // Upper bound of the encoded record: fixed fields, UTF-8 at 3 bytes a UTF-16 unit at most.
  return 32 + r.body.length + 3 * (r.key.length + (r.id?.length ?? 0) + (r.exchange?.length ?? 0)) + (r.headers?.length ?? 0)
}

/**
 * The one way records reach a stream's log, whoever writes them: a publish, a dead letter, a
 * redrive, an ingest error. Appends records as one batch, or as consecutive batches when they
 * would not fit in a segment (half a segment, at most `appendBytesMax` each), and resolves once
 * all are durable under the stream's policy. The batches are stored together or not at all, at
 * contiguous offsets; the result spans them all.
 */
export async function appendToLog(log: Log, records: readonly AppendRecord[], segmentBytes: number): Promise<AppendResult> {
  const cap = Math.min(appendBytesMax, Math.floor(segmentBytes / 2))
  let bytes = 0
  for (const r of records) bytes += estimatedBytes(r)
  if (bytes <= cap) return log.append(records)
  const parts: AppendRecord[][] = []
  let start = 0
  let size = 0
  for (let i = 0; i < records.length; i++) {
    const b = estimatedBytes(records[i]!)
    if (size + b > cap && i > start) {
      parts.push(records.slice(start, i))
      start = i
      size = 0
    }
    size += b
  }
  parts.push(records.slice(start))
  // All or nothing: a part that fails to encode, or a failed write, keeps every part out, so a
  // failure answer never leaves the first megabytes of a request stored.
  return log.appendAll(parts)
}
