// GELF UDP chunking: a message too large for one datagram is cut into chunks, each a datagram.
//
// Chunk: 0x1e 0x0f | 8-byte message id | u8 sequence number | u8 sequence count | data
//
// The data of chunks 0..count-1, in sequence order, is the (usually compressed) message. GELF
// allows 128 chunks; Graylog drops a message whose chunks have not all come within 5 s.

/** The two magic bytes that start a chunk. */
export const chunkMagic0 = 0x1e
export const chunkMagic1 = 0x0f
const headerBytes = 12

/** Bookkeeping counted per incomplete message besides its data, so a flood of tiny chunks is bounded too. */
export const messageOverheadBytes = 1024

export function isChunk(datagram: Buffer): boolean {
  return datagram.length >= 2 && datagram[0] === chunkMagic0 && datagram[1] === chunkMagic1
}

export interface ReassemblyLimits {
  /** Chunks one message may declare at most (server.gelf.maxChunks). */
  readonly maxChunks: number
  /** All chunks of a message within this of its first (server.gelf.chunkTimeout). */
  readonly timeoutMs: number
  /** Bytes held for incomplete messages at most, overhead included (server.gelf.maxReassemblySize). */
  readonly maxBytes: number
}

/** What one chunk did. */
export type ChunkOutcome =
  | { readonly kind: 'complete'; readonly payload: Buffer }
  | { readonly kind: 'pending' }
  /** Not a valid chunk, or inconsistent with its message's earlier chunks: the message is gone. */
  | { readonly kind: 'invalid'; readonly reason: string; readonly limit?: 'gelf.maxChunks' | undefined }
  /** Held bytes would pass maxBytes: the chunk is dropped with the chunks of its message held so far. */
  | { readonly kind: 'over-memory' }

interface Partial {
  readonly firstAtMs: number
  readonly count: number
  readonly parts: Array<Buffer | undefined>
  received: number
  bytes: number
}

/**
 * Joins chunks into messages. Pure state, clock injected: the listener feeds it datagrams and
 * calls `expire` on a coarse timer. Incomplete messages are kept in a Map in arrival order, so
 * expiry walks only the ones that are due.
 */
export class ChunkReassembler {
  readonly #partials = new Map<string, Partial>()
  #bytes = 0

  constructor(
    private readonly limits: ReassemblyLimits,
    private readonly now: () => number,
    /** Called with the number of incomplete messages a sweep dropped for their timeout. */
    private readonly onExpired: (messages: number) => void,
  ) {}

  /** Bytes held for incomplete messages, overhead included. */
  get heldBytes(): number {
    return this.#bytes
  }

  get pendingMessages(): number {
    return this.#partials.size
  }

  /**
   * One chunk (a datagram starting with the magic bytes). `sender` scopes the message id, so a
   * client cannot add chunks to another's message.
   */
  add(datagram: Buffer, sender: string): ChunkOutcome {
    this.expire()
    if (datagram.length < headerBytes) return { kind: 'invalid', reason: `a chunk of ${datagram.length} bytes is shorter than its 12-byte header` }
    const seq = datagram[10]!
    const count = datagram[11]!
    if (count === 0) return { kind: 'invalid', reason: 'a chunk declaring a sequence count of 0' }
    if (count > this.limits.maxChunks) return { kind: 'invalid', reason: `a chunk declaring ${count} chunks, over server.gelf.maxChunks (${this.limits.maxChunks})`, limit: 'gelf.maxChunks' }
    if (seq >= count) return { kind: 'invalid', reason: `a chunk numbered ${seq} of a message of ${count} chunks` }
    // Copied: the datagram's buffer is not ours to keep, and holding it would pin the whole of it.
    const data = Buffer.from(datagram.subarray(headerBytes))
    if (count === 1) return { kind: 'complete', payload: data }
    const key = `${sender} ${datagram.toString('hex', 2, 10)}`
    let p = this.#partials.get(key)
    if (p === undefined) {
      if (this.#bytes + messageOverheadBytes + data.length > this.limits.maxBytes) return { kind: 'over-memory' }
      p = { firstAtMs: this.now(), count, parts: new Array<Buffer | undefined>(count), received: 0, bytes: messageOverheadBytes }
      this.#partials.set(key, p)
      this.#bytes += messageOverheadBytes
    } else if (p.count !== count) {
      this.#drop(key, p)
      return { kind: 'invalid', reason: `a chunk declaring ${count} chunks for a message whose earlier chunks declared ${p.count}` }
    }
    // A repeated chunk (UDP may duplicate a datagram) adds nothing.
    if (p.parts[seq] !== undefined) return { kind: 'pending' }
    if (this.#bytes + data.length > this.limits.maxBytes) {
      this.#drop(key, p)
      return { kind: 'over-memory' }
    }
    p.parts[seq] = data
    p.received++
    p.bytes += data.length
    this.#bytes += data.length
    if (p.received < count) return { kind: 'pending' }
    this.#drop(key, p)
    return { kind: 'complete', payload: Buffer.concat(p.parts as Buffer[]) }
  }

  /** Drops the messages whose first chunk came `timeoutMs` ago or more; they are reported to onExpired. */
  expire(): void {
    const due = this.now() - this.limits.timeoutMs
    let expired = 0
    for (const [key, p] of this.#partials) {
      // Arrival order: the first one not due ends the walk.
      if (p.firstAtMs > due) break
      this.#drop(key, p)
      expired++
    }
    if (expired > 0) this.onExpired(expired)
  }

  /** Lets go of everything held (the listener is closing). */
  clear(): void {
    this.#partials.clear()
    this.#bytes = 0
  }

  #drop(key: string, p: Partial): void {
    this.#partials.delete(key)
    this.#bytes -= p.bytes
  }
}
