import { defaultStreamConfig, type IngestErrorsConfig, type ServerConfig, type StreamConfig } from '../config/index.js'
import { hitLimit } from '../limits.js'
import type { AppendRecord } from '../log/index.js'
import type { Stream } from '../streams/registry.js'

/** The stream that keeps what a door could not parse, so a bad frame is set aside, never lost. */
export const ingestErrorsStream = 'ingest-errors'

/**
 * The built-in stream when `streams` does not declare it: a stream's defaults, with a size cap,
 * since what fills it is chosen by whoever sends garbage.
 */
export function ingestErrorsStreamConfig(server: ServerConfig): StreamConfig {
  const d = defaultStreamConfig(ingestErrorsStream, server.durability.fsync)
  return { ...d, retention: { ...d.retention, maxBytes: server.ingestErrors.maxBytes } }
}

export interface IngestErrorInfo {
  readonly listener: string
  readonly remote: string | undefined
  readonly reason: string
  readonly raw: Buffer
  /** Line number within the connection, for line-framed doors. */
  readonly line?: number | undefined
  /** Bytes the frame really had, when `raw` was cut. */
  readonly bytes?: number | undefined
}

/**
 * Appends parse failures to the ingest-errors stream, batched. The body keeps the raw bytes (as
 * UTF-8 text when they are valid, else base64), the reason, where it came from and the line.
 */
export class IngestErrors {
  #queue: AppendRecord[] = []
  #flushing: Promise<void> | undefined
  recorded = 0
  dropped = 0

  constructor(
    private readonly stream: Stream | undefined,
    private readonly limits: IngestErrorsConfig,
  ) {}

  record(info: IngestErrorInfo): void {
    if (this.stream === undefined || this.#queue.length >= this.limits.maxQueued) {
      this.dropped++
      hitLimit('ingestErrors.maxQueued')
      return
    }
    // Enough to see what the frame was, bounded for a line of many megabytes.
    const raw = info.raw.subarray(0, this.limits.maxRawBytes)
    if (raw.length < info.raw.length) hitLimit('ingestErrors.maxRawSize')
    const text = raw.toString('utf8')
    const valid = Buffer.from(text, 'utf8').equals(raw)
    const body = {
      reason: info.reason,
      listener: info.listener,
      remote: info.remote ?? null,
      ...(info.line !== undefined ? { line: info.line } : {}),
      bytes: info.bytes ?? info.raw.length,
      truncated: (info.bytes ?? info.raw.length) > raw.length,
      ...(valid ? { raw: text } : { raw: raw.toString('base64'), rawEncoding: 'base64' }),
    }
    this.#queue.push({ timestamp: Date.now(), key: `${info.listener}.error`, body: Buffer.from(JSON.stringify(body)), json: true })
    this.recorded++
    this.#flushing ??= this.#flush()
  }

  async #flush(): Promise<void> {
    // Let the rest of the chunk's errors join the batch.
    await new Promise((r) => setImmediate(r))
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue
        this.#queue = []
        try {
          await this.stream!.append(batch)
        } catch {
          this.dropped += batch.length
        }
      }
    } finally {
      this.#flushing = undefined
    }
  }

  async drain(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing
  }
}
