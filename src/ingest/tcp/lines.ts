/**
 * Splits a TCP byte stream into LF-terminated lines (a CR before the LF is dropped, and so is a
 * CR that ends the stream), or into frames ending in another byte (GELF's NUL: no CR is dropped,
 * since it could be part of the frame). Whole lines inside a chunk are passed on as views; only a line
 * spanning chunks is copied. A line longer than `maxLineBytes` (not counting its CR and LF) is
 * reported once, with its first bytes, and skipped up to its LF without being buffered, so a
 * 10 MB line costs no more memory than the limit: at most `maxLineBytes` + 1 bytes are held.
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
    private readonly delimiter = 0x0a,
  ) {}

  /** Bytes held for a line that spans chunks; for metrics and tests. */
  get bufferedBytes(): number {
    return this.#carryBytes
  }

  push(chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const nl = chunk.indexOf(this.delimiter, start)
      const end = nl === -1 ? chunk.length : nl
      if (this.#skipping) {
        this.#skipped += end - start
        if (nl === -1) return
        this.#line++
        this.#tooLong(this.#prefix!, this.#skipped)
        start = nl + 1
        continue
      }
      // +1: the line may end in a CR, dropped with its LF; a line of exactly maxLineBytes + CRLF is fine.
      if (this.#carryBytes + (end - start) > this.maxLineBytes + 1) {
        // Too long: keep a prefix for the error record and drop the rest as it streams past.
        // Only the prefix is copied, so the record pins neither the carry nor the chunk.
        const parts = [...this.#carry, chunk.subarray(start, end)]
        this.#prefix = Buffer.concat(parts, Math.min(this.#carryBytes + (end - start), this.#prefixBytes()))
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
      const line = this.#carry.length === 0 ? chunk.subarray(start, end) : Buffer.concat([...this.#carry, chunk.subarray(start, end)])
      this.#carry = []
      this.#carryBytes = 0
      start = nl + 1
      this.#lineDone(line)
    }
  }

  /** The connection ended: a last line without LF still counts. */
  end(): void {
    if (this.#skipping) {
      this.#line++
      this.#tooLong(this.#prefix!, this.#skipped)
      return
    }
    if (this.#carryBytes > 0) {
      const line = Buffer.concat(this.#carry)
      this.#carry = []
      this.#carryBytes = 0
      this.#lineDone(line)
    }
  }

  // A whole line (its LF, if any, removed): a CR at its end is dropped, then the limit applies.
  #lineDone(raw: Buffer): void {
    const line = this.delimiter === 0x0a && raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw
    this.#line++
    if (line.length > this.maxLineBytes) {
      this.#tooLong(Buffer.from(raw.subarray(0, this.#prefixBytes())), raw.length)
      return
    }
    this.onLine(line, this.#line)
  }

  #tooLong(prefix: Buffer, bytes: number): void {
    this.#skipping = false
    this.#prefix = undefined
    this.onTooLong(prefix, bytes, this.#line)
  }

  #prefixBytes(): number {
    return Math.min(this.maxLineBytes, 64 * 1024)
  }
}
