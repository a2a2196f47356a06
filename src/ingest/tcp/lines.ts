/**
 * Splits a TCP byte stream into LF-terminated lines (a CR before the LF is dropped). Whole lines
 * inside a chunk are passed on as views; only a line spanning chunks is copied. A line longer
 * than `maxLineBytes` is reported once, with its first bytes, and skipped up to its LF without
 * being buffered, so a 10 MB line costs no more memory than the limit.
 */
export class LineSplitter {
  #carry: Buffer[] = []
  #carryBytes = 0
  #skipping = false
  #skipped = 0
  #prefix: Buffer | undefined
  #line = 0

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: Buffer, lineNo: number) => void,
    private readonly onTooLong: (prefix: Buffer, bytes: number, lineNo: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start)
      const end = nl === -1 ? chunk.length : nl
      if (this.#skipping) {
        this.#skipped += end - start
        if (nl === -1) return
        this.#line++
        this.onTooLong(this.#prefix!, this.#skipped, this.#line)
        this.#skipping = false
        this.#prefix = undefined
        start = nl + 1
        continue
      }
      if (this.#carryBytes + (end - start) > this.maxLineBytes) {
        // Too long: keep a prefix for the error record and drop the rest as it streams past.
        const parts = [...this.#carry, chunk.subarray(start, end)]
        this.#prefix = Buffer.concat(parts).subarray(0, Math.min(this.maxLineBytes, 64 * 1024))
        this.#skipped = this.#carryBytes + (end - start)
        this.#carry = []
        this.#carryBytes = 0
        this.#skipping = true
        start = end // counted already; the skipping branch takes it from the LF (if any) on
        continue
      }
      if (nl === -1) {
        // A partial line: copy, since the chunk's buffer may be reused by the stream.
        this.#carry.push(Buffer.from(chunk.subarray(start)))
        this.#carryBytes += chunk.length - start
        return
      }
      let line = this.#carry.length === 0 ? chunk.subarray(start, end) : Buffer.concat([...this.#carry, chunk.subarray(start, end)])
      this.#carry = []
      this.#carryBytes = 0
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1)
      this.#line++
      this.onLine(line, this.#line)
      start = nl + 1
    }
  }

  /** The connection ended: a last line without LF still counts. */
  end(): void {
    if (this.#skipping) {
      this.#line++
      this.onTooLong(this.#prefix!, this.#skipped, this.#line)
      this.#skipping = false
      return
    }
    if (this.#carryBytes > 0) {
      const line = Buffer.concat(this.#carry)
      this.#carry = []
      this.#carryBytes = 0
      this.#line++
      this.onLine(line, this.#line)
    }
  }
}
