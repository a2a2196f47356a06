// RFC 6587 framing of syslog over TCP. Pure: bytes in, frames out; the listener owns the socket.
//
// Each frame picks its own method, so one connection may mix them (rsyslog and syslog-ng send
// octet counts, logger sends either, pino-syslog sends LF lines):
//
//   octet counting   MSG-LEN SP MSG      MSG-LEN = 1*DIGIT, the frame starts with a digit
//   LF framing       MSG LF              anything else, up to the next LF (a CR before it is dropped)
//
// What real senders do with the counted bytes (shared/CLIENTS.md, "Parser checklist"):
// - rsyslog and syslog-ng put the message's LF INSIDE the count (`110 <134>1 … 1ms\n`), logger
//   does not (`109 <134>1 … 1ms109 <12>1 …`). One trailing LF (or CRLF) of a counted frame is
//   therefore stripped, so both give the same frame.
// - A bare LF after a counted frame, and empty lines in general, carry no message: they are
//   skipped silently instead of producing empty frames.
//
// Limits are checked before bytes are buffered (STYLE.md §4, §8): an over-long line is reported
// once and dropped up to its LF, never held in memory; a malformed count (digits not followed by
// SP, or more than 9 digits) is reported and the framer resynchronises at the next LF. Memory per
// connection is bounded by `maxMessageBytes` + 2.
//
// A count over `maxMessageBytes` is reported once and not trusted: skipping all MSG-LEN bytes let
// one `999999999 ` swallow a gigabyte of the frames after it. The framer resynchronises at the
// next frame instead: at the end of the claimed MSG-LEN bytes, or earlier at the first line that
// starts like a frame (a digit or `<`) after an LF, whichever comes first. rsyslog does the same
// ("frame too large, change to octet stuffing"). So an honest over-long frame still ends where its
// count says (logger's frames carry no LF), one whose count was a lie ends at its LF
// (rsyslog and syslog-ng end every frame with one), and the continuation lines of a long
// multi-line message are dropped with it, since they do not start like a frame.
//
// Frames that lie whole inside one chunk are passed on as `subarray` views of that chunk (no copy;
// the view keeps the chunk alive as long as it is held). Only a frame spanning chunks is copied.

const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39
const LT = 0x3c

/** Bytes of the offending frame attached to an error report: enough to identify the sender. */
export const syslogFrameErrorRawBytesMax = 1024
/** A count of 10 or more digits (≥ 1 GB) is not a length any sender means: resync at LF instead of skipping it. */
const countDigitsMax = 9

/**
 * Why a frame was dropped: `too-long` (over `maxMessageBytes`; the stream stays in sync),
 * `bad-count` (an octet count that is not `DIGITS SP`; resynchronised at the next LF),
 * `truncated` (the stream ended inside a counted frame or its count).
 */
export type SyslogFrameErrorKind = 'too-long' | 'bad-count' | 'truncated'

export interface SyslogFramerOptions {
  /** Largest frame handed to `onFrame`, in bytes, not counting the stripped LF or CRLF. */
  readonly maxMessageBytes: number
  /** One complete frame, without its framing (count, trailing LF or CRLF). Never empty. */
  readonly onFrame: (frame: Buffer) => void
  /**
   * A frame was dropped. Called once per bad frame, with at most `syslogFrameErrorRawBytesMax`
   * bytes from its start (for an octet-counted frame, from its count on).
   */
  readonly onError: (reason: string, raw: Buffer, kind: SyslogFrameErrorKind) => void
}

// Framer states. START: at a frame boundary. COUNT: reading MSG-LEN digits. OCTET: filling a
// counted frame that spans chunks. LINE: collecting a line that spans chunks. SKIP_LINE: dropping
// bytes up to the next LF. RESYNC: dropping an over-long counted frame up to the next frame.
const START = 0
const COUNT = 1
const OCTET = 2
const LINE = 3
const SKIP_LINE = 4
const RESYNC = 5

/**
 * Streaming RFC 6587 framer for one TCP connection: call `push` with every chunk as it arrives
 * and `end` when the peer closes. Frames and errors are reported synchronously from those calls,
 * in stream order. If a callback throws, the framer still consumes the whole chunk (so the stream
 * stays in sync) and `push`/`end` rethrow the first such error afterwards.
 */
export class SyslogFramer {
  readonly #max: number
  readonly #onFrame: (frame: Buffer) => void
  readonly #onError: (reason: string, raw: Buffer, kind: SyslogFrameErrorKind) => void

  #state = START
  // COUNT: the value and number of digits so far; the digits seen in earlier chunks (≤ 9 bytes).
  #count = 0
  #countDigits = 0
  #countHead: Buffer | null = null
  // OCTET: the frame being filled and how many bytes it still lacks. RESYNC: bytes of the claimed
  // frame not yet seen, and whether the next byte starts a line (it may start the next frame).
  #frame: Buffer | null = null
  #filled = 0
  #need = 0
  #atLineStart = false
  // LINE: copies of the line's pieces from earlier chunks.
  #parts: Buffer[] = []
  #partsBytes = 0
  // The first error a callback threw during the current push/end, rethrown when it returns.
  #thrown: { error: unknown } | null = null

  constructor(options: SyslogFramerOptions) {
    const max = options.maxMessageBytes
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxMessageBytes must be a positive integer, got ${max}`)
    this.#max = max
    this.#onFrame = options.onFrame
    this.#onError = options.onError
  }

  /** Bytes held for a frame that spans chunks (bounded by `maxMessageBytes` + 2); for metrics and tests. */
  get bufferedBytes(): number {
    return this.#state === OCTET ? this.#filled : this.#partsBytes + (this.#countHead?.length ?? 0)
  }

  push(chunk: Buffer): void {
    const len = chunk.length
    let pos = 0
    while (pos < len) {
      switch (this.#state) {
        case START: {
          const c = chunk[pos]!
          if (c === LF) {
            pos++ // an empty line, or the LF some senders put after a counted frame
          } else if (c >= DIGIT_0 && c <= DIGIT_9) {
            this.#state = COUNT
            this.#count = 0
            this.#countDigits = 0
            this.#countHead = null
            pos = this.#readCount(chunk, pos, pos)
          } else {
            pos = this.#readLine(chunk, pos)
          }
          break
        }
        case COUNT:
          pos = this.#readCount(chunk, pos, 0)
          break
        case OCTET:
          pos = this.#fillOctet(chunk, pos)
          break
        case LINE:
          pos = this.#readLine(chunk, pos)
          break
        case SKIP_LINE: {
          const nl = chunk.indexOf(LF, pos)
          if (nl === -1) {
            pos = len
          } else {
            this.#state = START
            pos = nl + 1
          }
          break
        }
        default:
          pos = this.#resync(chunk, pos)
      }
    }
    this.#rethrow()
  }

  /** The peer closed the connection: a last LF frame without its LF is still a frame. Resets the framer. */
  end(): void {
    switch (this.#state) {
      case LINE: {
        const line = Buffer.concat(this.#parts, this.#partsBytes)
        this.#parts = []
        this.#partsBytes = 0
        this.#state = START
        this.#lineDone(line)
        break
      }
      case COUNT: {
        const head = this.#countHead ?? Buffer.alloc(0)
        this.#countHead = null
        this.#state = START
        this.#report(`stream ended inside an octet count (${head.length} digits, no SP)`, head, 'truncated')
        break
      }
      case OCTET: {
        const frame = this.#frame!
        const filled = this.#filled
        this.#frame = null
        this.#filled = 0
        this.#state = START
        this.#report(
          `stream ended ${frame.length - filled} bytes short of a ${frame.length}-byte octet-counted frame`,
          Buffer.from(frame.subarray(0, Math.min(filled, syslogFrameErrorRawBytesMax))),
          'truncated',
        )
        break
      }
      default:
        this.#state = START // SKIP_LINE and RESYNC were reported when they began
    }
    this.#rethrow()
  }

  // Reads MSG-LEN digits from `pos`; `frameStart` is where this frame's digits began in `chunk`
  // (0 when they began in an earlier chunk, whose digits are in #countHead).
  #readCount(chunk: Buffer, pos: number, frameStart: number): number {
    const len = chunk.length
    while (pos < len) {
      const c = chunk[pos]!
      if (c >= DIGIT_0 && c <= DIGIT_9) {
        if (++this.#countDigits > countDigitsMax) {
          this.#badCount(chunk, frameStart, pos, `octet count has more than ${countDigitsMax} digits`)
          return pos // not an LF, so SKIP_LINE takes it from here
        }
        this.#count = this.#count * 10 + (c - DIGIT_0)
        pos++
      } else if (c === SP) {
        return this.#beginOctet(chunk, frameStart, pos + 1)
      } else {
        this.#badCount(chunk, frameStart, pos, `octet count is followed by byte 0x${c.toString(16).padStart(2, '0')}, not SP`)
        return c === LF ? pos + 1 : pos
      }
    }
    // The count continues in the next chunk: keep its digits (at most 9 bytes) for error reports.
    const digits = chunk.subarray(frameStart, len)
    this.#countHead = this.#countHead === null ? Buffer.from(digits) : Buffer.concat([this.#countHead, digits])
    return len
  }

  #badCount(chunk: Buffer, frameStart: number, pos: number, why: string): void {
    const raw = this.#rawFrom(chunk, frameStart, pos + 1)
    this.#countHead = null
    // An LF right here ends the bad frame; otherwise drop everything up to the next LF.
    this.#state = chunk[pos] === LF ? START : SKIP_LINE
    this.#report(`${why}; skipped to the next LF`, raw, 'bad-count')
  }

  // MSG-LEN SP has been read; `pos` is the first byte of MSG.
  #beginOctet(chunk: Buffer, frameStart: number, pos: number): number {
    const n = this.#count
    const available = chunk.length - pos
    // +2: the count may include a trailing CRLF, which is stripped before the limit applies.
    if (n > this.#max + 2) {
      // What follows in this chunk up to an LF: the frames after it are not part of the report.
      const nl = chunk.indexOf(LF, pos)
      const raw = this.#rawFrom(chunk, frameStart, nl === -1 ? chunk.length : nl + 1)
      this.#countHead = null
      this.#report(`octet-counted frame of ${n} bytes is over maxMessageBytes (${this.#max}); skipped to the next frame`, raw, 'too-long')
      this.#need = n
      this.#atLineStart = false
      this.#state = RESYNC
      return pos
    }
    this.#countHead = null
    if (available >= n) {
      this.#state = START
      this.#octetDone(chunk.subarray(pos, pos + n)) // the common case: a view, no copy
      return pos + n
    }
    // The frame spans chunks: copy into one buffer of exactly its size (≤ maxMessageBytes + 2).
    const frame = Buffer.allocUnsafe(n)
    chunk.copy(frame, 0, pos)
    this.#frame = frame
    this.#filled = available
    this.#need = n - available
    this.#state = OCTET
    return chunk.length
  }

  // RESYNC: drops bytes until the claimed frame ends or a line after an LF starts like a frame.
  #resync(chunk: Buffer, pos: number): number {
    const len = chunk.length
    while (pos < len) {
      if (this.#atLineStart) {
        this.#atLineStart = false
        const c = chunk[pos]!
        if (c === LT || (c >= DIGIT_0 && c <= DIGIT_9)) {
          this.#state = START
          return pos
        }
      }
      const limit = Math.min(len, pos + this.#need)
      const nl = chunk.indexOf(LF, pos)
      const stop = nl !== -1 && nl < limit ? nl + 1 : limit
      this.#need -= stop - pos
      pos = stop
      if (this.#need === 0) {
        this.#state = START
        return pos
      }
      this.#atLineStart = stop === nl + 1
    }
    return pos
  }

  #fillOctet(chunk: Buffer, pos: number): number {
    const n = Math.min(this.#need, chunk.length - pos)
    const frame = this.#frame!
    chunk.copy(frame, this.#filled, pos, pos + n)
    this.#filled += n
    this.#need -= n
    if (this.#need === 0) {
      this.#frame = null
      this.#filled = 0
      this.#state = START
      this.#octetDone(frame)
    }
    return pos + n
  }

  #octetDone(frame: Buffer): void {
    let end = frame.length
    if (end > 0 && frame[end - 1] === LF) {
      end--
      if (end > 0 && frame[end - 1] === CR) end--
    }
    if (end === 0) return // `0 ` or a counted bare LF: nothing to pass on
    if (end > this.#max) {
      this.#report(`octet-counted frame of ${end} bytes is over maxMessageBytes (${this.#max})`, copyPrefix(frame), 'too-long')
      return
    }
    this.#emit(end === frame.length ? frame : frame.subarray(0, end))
  }

  // At START or in LINE: looks for the LF that ends the current line.
  #readLine(chunk: Buffer, pos: number): number {
    const len = chunk.length
    const nl = chunk.indexOf(LF, pos)
    if (nl === -1) {
      // +1: a CR may end the piece and will be dropped with the LF.
      if (this.#partsBytes + (len - pos) > this.#max + 1) {
        const raw = this.#linePrefix(chunk, pos, len)
        this.#parts = []
        this.#partsBytes = 0
        this.#state = SKIP_LINE
        this.#report(`line is over maxMessageBytes (${this.#max}) without an LF; skipped to the next LF`, raw, 'too-long')
        return len
      }
      // Copy: the line outlives this chunk, whose memory the socket may reuse.
      this.#parts.push(Buffer.from(chunk.subarray(pos, len)))
      this.#partsBytes += len - pos
      this.#state = LINE
      return len
    }
    this.#state = START
    if (this.#parts.length === 0) {
      this.#lineDone(chunk.subarray(pos, nl)) // the common case: a view, no copy
    } else if (this.#partsBytes + (nl - pos) > this.#max + 1) {
      const bytes = this.#partsBytes + (nl - pos)
      const raw = this.#linePrefix(chunk, pos, nl)
      this.#parts = []
      this.#partsBytes = 0
      this.#report(`line of ${bytes} bytes is over maxMessageBytes (${this.#max})`, raw, 'too-long')
    } else {
      this.#parts.push(chunk.subarray(pos, nl))
      const line = Buffer.concat(this.#parts, this.#partsBytes + (nl - pos))
      this.#parts = []
      this.#partsBytes = 0
      this.#lineDone(line)
    }
    return nl + 1
  }

  #lineDone(line: Buffer): void {
    let end = line.length
    if (end > 0 && line[end - 1] === CR) end--
    if (end === 0) return // an empty line
    if (end > this.#max) {
      this.#report(`line of ${end} bytes is over maxMessageBytes (${this.#max})`, copyPrefix(line), 'too-long')
      return
    }
    this.#emit(end === line.length ? line : line.subarray(0, end))
  }

  // Up to syslogFrameErrorRawBytesMax bytes of a line: its earlier pieces, then chunk[start, end).
  #linePrefix(chunk: Buffer, start: number, end: number): Buffer {
    const pieces: Buffer[] = []
    let bytes = 0
    for (const part of this.#parts) {
      if (bytes >= syslogFrameErrorRawBytesMax) break
      pieces.push(part)
      bytes += part.length
    }
    if (bytes < syslogFrameErrorRawBytesMax) pieces.push(chunk.subarray(start, end))
    return copyPrefix(Buffer.concat(pieces))
  }

  // Up to syslogFrameErrorRawBytesMax bytes from a counted frame's start: digits from earlier chunks, then chunk[start, end).
  #rawFrom(chunk: Buffer, start: number, end: number): Buffer {
    const piece = chunk.subarray(start, Math.min(end, start + syslogFrameErrorRawBytesMax))
    return copyPrefix(this.#countHead === null ? piece : Buffer.concat([this.#countHead, piece]))
  }

  #emit(frame: Buffer): void {
    try {
      this.#onFrame(frame)
    } catch (error) {
      this.#thrown ??= { error }
    }
  }

  #report(reason: string, raw: Buffer, kind: SyslogFrameErrorKind): void {
    try {
      this.#onError(reason, raw, kind)
    } catch (error) {
      this.#thrown ??= { error }
    }
  }

  #rethrow(): void {
    const thrown = this.#thrown
    if (thrown !== null) {
      this.#thrown = null
      throw thrown.error
    }
  }
}

// A copy, so an error report never pins a large chunk in memory.
function copyPrefix(bytes: Buffer): Buffer {
  return Buffer.from(bytes.subarray(0, syslogFrameErrorRawBytesMax))
}
