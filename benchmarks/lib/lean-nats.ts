// A NATS JetStream pull consumer without a library, for benchmarks: the text protocol parsed by
// hand, so the figures measure nats-server rather than nats.js (whose per-message cost is above
// the server's). Two pull requests stay in flight; each message is acked on its own (+ACK).

import { randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'

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

const crlf = Buffer.from('\r\n')

/** Sequence and redelivery from an ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...). */
function ackInfo(reply: string): { seq: number; redelivered: boolean } {
  const t = reply.split('.')
  // v1: 9 tokens; v2 adds a domain and an account hash up front and a token at the end (12).
  const base = t.length >= 12 ? 4 : 2
  return { seq: Number(t[base + 3]), redelivered: Number(t[base + 2]) > 1 }
}

export async function leanPull(o: LeanPullOptions): Promise<LeanPullResult> {
  const sock: Socket = netConnect({ host: '127.0.0.1', port: o.port, noDelay: true })
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j))
  let buf: Buffer = Buffer.alloc(0)
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
    sock.write('PING\r\n')
    pongWaiters.push(() => {
      sock.destroy()
      finish({ pulls, acked, emptyPulls, stoppedBy, ...(error !== undefined ? { error } : {}) })
    })
  }
  const pongWaiters: Array<() => void> = []
  // Each client its own inbox prefix: a shared one would hand every client the others' messages.
  const inboxPrefix = `_INBOX.${randomBytes(8).toString('hex')}`
  let nextInbox = 0
  const pull = (): void => {
    if (over) return
    const inbox = `${inboxPrefix}.${nextInbox++}`
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
  const onMsg = (subject: string, reply: string | undefined, headers: Buffer | undefined, payload: Buffer): void => {
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
  let ready: () => void = () => undefined
  const connected = new Promise<void>((r) => (ready = r))
  sock.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d])
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
        onMsg(parts[1]!, reply, h ? buf.subarray(start, start + hdr) : undefined, buf.subarray(start + hdr, start + total))
        off = start + total + 2
        continue
      }
      off = eol + 2
      if (line === 'PING') sock.write('PONG\r\n')
      else if (line === 'PONG') pongWaiters.shift()?.()
      else if (line.startsWith('-ERR')) end('error', line)
      else if (line.startsWith('INFO ')) ready()
    }
    buf = off >= buf.length ? Buffer.alloc(0) : buf.subarray(off)
    flushAcks()
  })
  sock.on('error', (err) => end('error', err.message))
  await connected
  sock.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"lang":"lean","version":"0"}\r\nSUB ${inboxPrefix}.* 1\r\n`)
  const pong = new Promise<void>((r) => pongWaiters.push(r))
  sock.write('PING\r\n')
  await pong
  const timer = setTimeout(() => end('time'), o.deadlineMs)
  for (let i = 0; i < o.pipeline; i++) pull()
  const r = await done
  clearTimeout(timer)
  return r
}
