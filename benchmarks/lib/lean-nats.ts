// NATS JetStream clients without a library, for benchmarks: the text protocol parsed by hand, so
// the figures measure nats-server rather than nats.js (whose per-message cost is above the
// server's). Two of them on one connection core (LeanNats: handshake, MSG/HMSG parsing, PING/PONG):
//   leanPull           a pull consumer: two pull requests in flight; each message acked on its own (+ACK).
//   LeanNatsPublisher  a JetStream publisher: PUB with a reply inbox per message, the PubAck read
//                      from that inbox; the caller keeps as many unacknowledged as it likes.

import { randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'

const crlf = Buffer.from('\r\n')

/**
 * One connection to 127.0.0.1:port: CONNECT, a subscription to its own inbox prefix
 * (`<inboxPrefix>.*`, sid 1), and a PING answered before `open` resolves. Each client has its own
 * random prefix: a shared one would hand every client the others' messages.
 */
class LeanNats {
  readonly sock: Socket
  readonly inboxPrefix = `_INBOX.${randomBytes(8).toString('hex')}`
  /** Each MSG / HMSG: `reply` undefined when it has none; `headers` only for HMSG. Views valid until the handler returns. */
  onMsg: (subject: string, reply: string | undefined, headers: Buffer | undefined, payload: Buffer) => void = () => undefined
  /** After each read's messages: where what they called for goes out in one write. */
  onReadEnd: () => void = () => undefined
  /** -ERR from the server, a socket error, or the socket closed (not after close()). */
  onError: (why: string) => void = () => undefined
  #buf: Buffer = Buffer.alloc(0)
  #pongWaiters: Array<() => void> = []
  #info: () => void = () => undefined
  #closing = false

  private constructor(sock: Socket) {
    this.sock = sock
    sock.on('data', (d: Buffer) => this.#read(d))
    sock.on('error', (err) => this.#lost(err.message))
    sock.on('close', () => this.#lost('socket closed'))
  }

  /** `connect`: the CONNECT options, as JSON. */
  static async open(port: number, connect: string, timeoutMs = 10_000): Promise<LeanNats> {
    const sock = netConnect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j))
    const c = new LeanNats(sock)
    let failed: (why: string) => void = () => undefined
    const broken = new Promise<never>((_, j) => (failed = (why) => j(new Error(`NATS handshake: ${why}`))))
    c.onError = failed
    const timer = setTimeout(() => failed(`no answer in ${timeoutMs} ms`), timeoutMs)
    try {
      await Promise.race([new Promise<void>((r) => (c.#info = r)), broken])
      sock.write(`CONNECT ${connect}\r\nSUB ${c.inboxPrefix}.* 1\r\n`)
      await Promise.race([c.ping(), broken])
    } catch (err) {
      sock.destroy()
      throw err
    } finally {
      clearTimeout(timer)
    }
    c.onError = () => undefined
    return c
  }

  /** A PING, resolved at its PONG: everything written before it has reached the server (or the socket is gone). */
  ping(): Promise<void> {
    if (this.sock.destroyed) return Promise.resolve()
    const pong = new Promise<void>((r) => this.#pongWaiters.push(r))
    this.sock.write('PING\r\n')
    return pong
  }

  /** A PING answered (at most `timeoutMs`), then the socket closed. */
  async close(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.ping(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))])
    clearTimeout(timer)
    this.#closing = true
    this.sock.destroy()
  }

  #lost(why: string): void {
    // Nothing more will be answered: whoever waits for a PONG stops waiting.
    for (const w of this.#pongWaiters.splice(0)) w()
    if (!this.#closing) this.onError(why)
  }

  #read(d: Buffer): void {
    const buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d])
    let off = 0
    for (;;) {
      const eol = buf.indexOf(crlf, off)
      if (eol < 0) break
      const line = buf.toString('latin1', off, eol)
      if (line.startsWith('MSG ') || line.startsWith('HMSG ')) {
        const parts = line.split(' ').filter((p) => p !== '')
        const h = parts[0] === 'HMSG'
        const total = Number(parts[parts.length - 1])
        const hdr = h ? Number(parts[parts.length - 2]) : 0
        const start = eol + 2
        if (buf.length < start + total + 2) break
        const reply = parts.length === (h ? 6 : 5) ? parts[3] : undefined
        this.onMsg(parts[1]!, reply, h ? buf.subarray(start, start + hdr) : undefined, buf.subarray(start + hdr, start + total))
        off = start + total + 2
        continue
      }
      off = eol + 2
      if (line === 'PING') this.sock.write('PONG\r\n')
      else if (line === 'PONG') this.#pongWaiters.shift()?.()
      else if (line.startsWith('-ERR')) this.onError(line)
      else if (line.startsWith('INFO ')) this.#info()
    }
    this.#buf = off >= buf.length ? Buffer.alloc(0) : buf.subarray(off)
    this.onReadEnd()
  }
}

// ---- pull consumer -------------------------------------------------------------------------------

export interface LeanPullOptions {
  readonly port: number
  readonly stream: string
  readonly consumer: string
  /** messages per pull request */
  readonly batch: number
  /** pull requests kept in flight */
  readonly pipeline: number
  /** stop once this many are acked; 0: at the first pull answered 404 (no messages) */
  readonly limit: number
  readonly deadlineMs: number
  /** Called with each message's stream sequence, redelivered flag and payload view. */
  readonly onMessage: (seq: number, redelivered: boolean, payload: Buffer) => void
}

export interface LeanPullResult {
  readonly pulls: number
  readonly acked: number
  readonly emptyPulls: number
  readonly stoppedBy: 'empty' | 'limit' | 'time' | 'error'
  readonly error?: string
}

/** Sequence and redelivery from an ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...). */
function ackInfo(reply: string): { seq: number; redelivered: boolean } {
  const t = reply.split('.')
  // v1: 9 tokens; v2 adds a domain and an account hash up front and a token at the end (12).
  const base = t.length >= 12 ? 4 : 2
  return { seq: Number(t[base + 3]), redelivered: Number(t[base + 2]) > 1 }
}

export async function leanPull(o: LeanPullOptions): Promise<LeanPullResult> {
  const c = await LeanNats.open(o.port, '{"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"lang":"lean","version":"0"}')
  const sock = c.sock
  let pulls = 0
  let acked = 0
  let emptyPulls = 0
  let acks: string[] = []
  // Pull requests in the order sent: JetStream fills waiting requests in order, and a delivered
  // message names the stream's subject, not the request's inbox, so the head request is the one
  // each message counts against. A status (404, 408) names the inbox of the request it ends.
  const pending: Array<{ inbox: string; left: number; got: number }> = []
  let finish: (r: LeanPullResult) => void = () => undefined
  const done = new Promise<LeanPullResult>((r) => (finish = r))
  let over = false
  const end = (stoppedBy: LeanPullResult['stoppedBy'], error?: string): void => {
    if (over) return
    over = true
    flushAcks()
    // A PING answered by PONG: every ack before it reached the server.
    void c.close().then(() => finish({ pulls, acked, emptyPulls, stoppedBy, ...(error !== undefined ? { error } : {}) }))
  }
  let nextInbox = 0
  const pull = (): void => {
    if (over) return
    const inbox = `${c.inboxPrefix}.${nextInbox++}`
    const n = o.limit > 0 ? Math.min(o.batch, o.limit - acked - pending.reduce((a, p) => a + p.left, 0)) : o.batch
    if (n <= 0) return
    pending.push({ inbox, left: n, got: 0 })
    pulls++
    const body = JSON.stringify({ batch: n, no_wait: true })
    sock.write(`PUB $JS.API.CONSUMER.MSG.NEXT.${o.stream}.${o.consumer} ${inbox} ${Buffer.byteLength(body)}\r\n${body}\r\n`)
  }
  const flushAcks = (): void => {
    if (acks.length === 0) return
    sock.write(acks.join(''))
    acks = []
  }
  const requestEnded = (at: number, empty: boolean): void => {
    const [r] = pending.splice(at, 1)
    if (r === undefined) return
    if (empty && r.got === 0) emptyPulls++
    if (o.limit > 0 && acked >= o.limit) return end('limit')
    if (empty && o.limit === 0) {
      if (pending.length === 0) end('empty')
      return
    }
    pull()
  }
  c.onMsg = (subject, reply, headers, payload) => {
    if (reply === undefined) {
      // A status: 404 no messages, 408 request timeout, 409 (max ack pending and the like).
      const status = headers === undefined ? '' : headers.toString('latin1', 9, 12)
      const at = pending.findIndex((p) => p.inbox === subject)
      if (at >= 0) requestEnded(at, status === '404' || status === '408')
      return
    }
    const { seq, redelivered } = ackInfo(reply)
    o.onMessage(seq, redelivered, payload)
    acks.push(`PUB ${reply} 4\r\n+ACK\r\n`)
    acked++
    const head = pending[0]
    if (head !== undefined) {
      head.got++
      if (--head.left <= 0) requestEnded(0, false)
    }
    if (o.limit > 0 && acked >= o.limit) end('limit')
  }
  c.onReadEnd = flushAcks
  c.onError = (why) => end('error', why)
  const timer = setTimeout(() => end('time'), o.deadlineMs)
  for (let i = 0; i < o.pipeline; i++) pull()
  const r = await done
  clearTimeout(timer)
  return r
}

// ---- publisher -----------------------------------------------------------------------------------

export interface LeanNatsPublisherOptions {
  readonly port: number
  /** a subject a JetStream stream listens on */
  readonly subject: string
  /** the payloads, sent in turn */
  readonly bodies: readonly Buffer[]
}

/**
 * JetStream publishes on the text protocol: `PUB <subject> <inbox>.<n> <len>` for message n, whose
 * PubAck comes back as `MSG <inbox>.<n> 1 <len>` with `{"stream":…,"seq":…}` (or an `"error"`).
 * `send(n)` writes n messages in one write; each PubAck calls `onSettled` with its message's send
 * time, and after each read `onReadEnd` runs: a closed loop refills its window there, in one write.
 */
export class LeanNatsPublisher {
  /** Each PubAck: ok, or an error PubAck; `sentAt` is its message's performance.now() at send. */
  onSettled: (ok: boolean, sentAt: number) => void = () => undefined
  onReadEnd: () => void = () => undefined
  onError: (why: string) => void = () => undefined
  readonly #c: LeanNats
  readonly #subject: string
  readonly #bodies: readonly Buffer[]
  /** send time of each message not yet acknowledged, by n */
  readonly #sentAt = new Map<number, number>()
  readonly #maxBody: number
  #next = 0
  #errors = 0

  private constructor(c: LeanNats, o: LeanNatsPublisherOptions) {
    this.#c = c
    this.#subject = o.subject
    this.#bodies = o.bodies
    this.#maxBody = Math.max(...o.bodies.map((b) => b.length))
    const prefixLen = c.inboxPrefix.length + 1
    c.onMsg = (subject, _reply, _headers, payload) => {
      const n = Number(subject.slice(prefixLen))
      const sentAt = this.#sentAt.get(n)
      if (sentAt === undefined) return
      this.#sentAt.delete(n)
      // {"stream":"PUB","seq":123} or {"error":{"code":503,…}}: only an error has the word.
      const ok = payload.indexOf('"error"') < 0
      if (!ok && this.#errors++ < 3) process.stderr.write(`lean NATS publisher: error PubAck ${payload.toString('utf8').slice(0, 300)}\n`)
      this.onSettled(ok, sentAt)
    }
    c.onReadEnd = () => this.onReadEnd()
    c.onError = (why) => this.onError(why)
  }

  static async open(o: LeanNatsPublisherOptions): Promise<LeanNatsPublisher> {
    if (o.bodies.length === 0) throw new Error('LeanNatsPublisher: no bodies')
    return new LeanNatsPublisher(await LeanNats.open(o.port, '{"verbose":false,"pedantic":false,"headers":false}'), o)
  }

  /** Messages sent and not yet acknowledged. */
  get unconfirmed(): number {
    return this.#sentAt.size
  }

  /** Sends the next `n` messages (the bodies in turn), in one write. */
  send(n: number): void {
    if (n <= 0) return
    const now = performance.now()
    const head = `PUB ${this.#subject} ${this.#c.inboxPrefix}.`
    // Each message: the PUB line (head, n, length: at most 16 + 1 + 10 + 2 characters after the
    // head), the body, CRLF.
    const out = Buffer.allocUnsafe(n * (head.length + 29 + this.#maxBody + 2))
    let off = 0
    for (let i = 0; i < n; i++) {
      const k = this.#next++
      const body = this.#bodies[k % this.#bodies.length]!
      this.#sentAt.set(k, now)
      off += out.write(`${head}${k} ${body.length}\r\n`, off, 'latin1')
      off += body.copy(out, off)
      out[off++] = 13
      out[off++] = 10
    }
    this.#c.sock.write(out.subarray(0, off))
  }

  /** A PING answered (everything sent has reached the server), then the socket closed. */
  close(): Promise<void> {
    return this.#c.close()
  }
}
