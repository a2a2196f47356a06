// Splits a TCP byte stream into whole msgpack values, one Forward message each, without decoding
// them: only the headers are read, to know where a value ends. Decoding is @msgpack/msgpack's job,
// once a value is whole. The scan resumes where it stopped when more bytes come, so a large
// message arriving in many chunks is walked once, and a declared size over the limit is refused
// before its bytes are buffered.

/** Why the stream cannot go on: msgpack has no frame marker to resynchronise on. */
export interface FrameError {
  readonly error: string
  /** Set when a named limit refused it. */
  readonly limit?: 'forward.maxFrameSize' | undefined
}

export interface FrameSplitterOptions {
  /** Bytes one value may take at most (server.forward.maxFrameSize). */
  readonly maxFrameBytes: number
  /** Nesting at most; deeper is refused (the decoder recurses). */
  readonly maxDepth: number
  readonly onFrame: (frame: Buffer) => void
  /** Called once; the splitter takes nothing more after it. */
  readonly onError: (err: FrameError, prefix: Buffer) => void
}

/** The buffer is let go between frames when it grew past this. */
const retainedBytesMax = 1024 * 1024

/** Bytes of the first frame kept for an error record. */
const prefixBytes = 4096

/**
 * The size of the value whose header starts at `pos`: the bytes of its header and payload (for
 * strings, binaries, extensions and scalars) and how many values it contains (arrays, maps).
 * undefined when the header itself is not all there yet.
 */
function header(buf: Buffer, pos: number): { bytes: number; children: number } | undefined | FrameError {
  const b = buf[pos]
  if (b === undefined) return undefined
  const need = (n: number): boolean => pos + n <= buf.length
  if (b <= 0x7f || b >= 0xe0) return { bytes: 1, children: 0 }
  if (b <= 0x8f) return { bytes: 1, children: 2 * (b & 0x0f) }
  if (b <= 0x9f) return { bytes: 1, children: b & 0x0f }
  if (b <= 0xbf) return { bytes: 1 + (b & 0x1f), children: 0 }
  switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return { bytes: 1, children: 0 }
    case 0xc4:
    case 0xd9:
      return need(2) ? { bytes: 2 + buf.readUInt8(pos + 1), children: 0 } : undefined
    case 0xc5:
    case 0xda:
      return need(3) ? { bytes: 3 + buf.readUInt16BE(pos + 1), children: 0 } : undefined
    case 0xc6:
    case 0xdb:
      return need(5) ? { bytes: 5 + buf.readUInt32BE(pos + 1), children: 0 } : undefined
    case 0xc7:
      return need(2) ? { bytes: 3 + buf.readUInt8(pos + 1), children: 0 } : undefined
    case 0xc8:
      return need(3) ? { bytes: 4 + buf.readUInt16BE(pos + 1), children: 0 } : undefined
    case 0xc9:
      return need(5) ? { bytes: 6 + buf.readUInt32BE(pos + 1), children: 0 } : undefined
    case 0xca:
      return { bytes: 5, children: 0 }
    case 0xcb:
      return { bytes: 9, children: 0 }
    case 0xcc:
    case 0xd0:
      return { bytes: 2, children: 0 }
    case 0xcd:
    case 0xd1:
      return { bytes: 3, children: 0 }
    case 0xce:
    case 0xd2:
      return { bytes: 5, children: 0 }
    case 0xcf:
    case 0xd3:
      return { bytes: 9, children: 0 }
    case 0xd4:
      return { bytes: 3, children: 0 }
    case 0xd5:
      return { bytes: 4, children: 0 }
    case 0xd6:
      return { bytes: 6, children: 0 }
    case 0xd7:
      return { bytes: 10, children: 0 }
    case 0xd8:
      return { bytes: 18, children: 0 }
    case 0xdc:
      return need(3) ? { bytes: 3, children: buf.readUInt16BE(pos + 1) } : undefined
    case 0xdd:
      return need(5) ? { bytes: 5, children: buf.readUInt32BE(pos + 1) } : undefined
    case 0xde:
      return need(3) ? { bytes: 3, children: 2 * buf.readUInt16BE(pos + 1) } : undefined
    case 0xdf:
      return need(5) ? { bytes: 5, children: 2 * buf.readUInt32BE(pos + 1) } : undefined
    default:
      return { error: `byte 0x${b.toString(16)} is not msgpack` }
  }
}

/**
 * One connection's msgpack values. Bytes are kept in one buffer that grows by doubling, so a
 * frame spanning many chunks costs linear copying; whole frames are handed on as views of it,
 * valid until `onFrame` returns.
 */
export class FrameSplitter {
  #store = Buffer.alloc(0)
  #start = 0
  #end = 0
  /** Where the scan of the current frame stopped, relative to #start. */
  #pos = 0
  /** Values still to read at each open level of the current frame. */
  #stack: number[] = [1]
  #failed = false

  constructor(private readonly opts: FrameSplitterOptions) {}

  /** Bytes held for a frame not yet whole. */
  get bufferedBytes(): number {
    return this.#end - this.#start
  }

  push(chunk: Buffer): void {
    if (this.#failed) return
    this.#append(chunk)
    for (;;) {
      const end = this.#scan()
      if (end === undefined) return
      if (typeof end !== 'number') {
        this.#failed = true
        const view = this.#store.subarray(this.#start, this.#end)
        this.opts.onError(end, Buffer.from(view.subarray(0, prefixBytes)))
        return
      }
      const frame = this.#store.subarray(this.#start, this.#start + end)
      this.#start += end
      this.#pos = 0
      this.#stack = [1]
      try {
        this.opts.onFrame(frame)
      } finally {
        if (this.#start === this.#end) {
          this.#start = this.#end = 0
          // A connection that once sent a large message does not keep its buffer.
          if (this.#store.length > retainedBytesMax) this.#store = Buffer.alloc(0)
        }
      }
    }
  }

  /** Where the current frame ends (relative to #start), undefined for more bytes, or why not. */
  #scan(): number | undefined | FrameError {
    const buf = this.#store.subarray(this.#start, this.#end)
    const max = this.opts.maxFrameBytes
    const stack = this.#stack
    while (stack.length > 0) {
      const top = stack.length - 1
      if (stack[top] === 0) {
        stack.pop()
        continue
      }
      const h = header(buf, this.#pos)
      if (h === undefined) return this.#pos >= max ? this.#tooLarge() : undefined
      if ('error' in h) return h
      // Every contained value takes a byte at least: a count past what the limit leaves is too large too.
      if (this.#pos + h.bytes + h.children > max) return this.#tooLarge()
      if (this.#pos + h.bytes > buf.length) return undefined
      stack[top]!--
      this.#pos += h.bytes
      if (h.children > 0) {
        if (stack.length >= this.opts.maxDepth) return { error: `msgpack nested deeper than ${this.opts.maxDepth} levels` }
        stack.push(h.children)
      }
    }
    return this.#pos
  }

  #tooLarge(): FrameError {
    return { error: `a msgpack message over server.forward.maxFrameSize (${this.opts.maxFrameBytes} bytes)`, limit: 'forward.maxFrameSize' }
  }

  #append(chunk: Buffer): void {
    const held = this.#end - this.#start
    if (this.#end + chunk.length > this.#store.length) {
      // Move what is held to the front, into a larger buffer when it does not fit.
      const size = held + chunk.length
      const next = size <= this.#store.length ? this.#store : Buffer.allocUnsafe(Math.max(size, this.#store.length * 2, 64 * 1024))
      this.#store.copy(next, 0, this.#start, this.#end)
      this.#store = next
      this.#start = 0
      this.#end = held
    }
    chunk.copy(this.#store, this.#end)
    this.#end += chunk.length
  }
}
