import amqp from 'amqplib'
import { onTestFinished } from 'vitest'
import { startTestServer, type TestServer } from './server.js'

export interface AmqpTestServer extends TestServer {
  readonly amqpUrl: string
  readonly amqpPort: number
}

/** A real server with the AMQP door on an ephemeral port (plus HTTP), over a fresh temp data dir. */
export async function startAmqpServer(opts: { dataDir?: string; pipeline?: string; server?: string; amqp?: string } = {}): Promise<AmqpTestServer> {
  const s = await startTestServer({ ...opts, amqp: opts.amqp ?? '{ port: 0 }' })
  const l = s.server.listeners.find((x) => x.options.name === 'amqp')
  if (l === undefined) throw new Error('no amqp listener')
  return { ...s, amqpPort: l.port, amqpUrl: `amqp://guest:guest@127.0.0.1:${l.port}` }
}

/** An amqplib connection closed when the test ends. */
export async function connect(url: string, socketOptions?: Record<string, unknown>): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(url, socketOptions)
  c.on('error', () => undefined)
  onTestFinished(async () => {
    // A connection whose socket a test destroyed never answers close: don't wait for it.
    await Promise.race([c.close().catch(() => undefined), new Promise((r) => setTimeout(r, 500))])
  })
  return c
}

/** Resolves with the first `n` messages a consumer gets (acking each unless told not to), then cancels it. */
export function collect(ch: amqp.Channel, queue: string, n: number, opts: { noAck?: boolean; ack?: boolean; arguments?: Record<string, unknown> } = {}): Promise<amqp.ConsumeMessage[]> {
  return new Promise((resolve, reject) => {
    const got: amqp.ConsumeMessage[] = []
    let tag: string | undefined
    let done = false
    const finish = (): void => {
      if (done || tag === undefined || got.length < n) return
      done = true
      ch.cancel(tag).then(() => resolve(got), reject)
    }
    ch.consume(
      queue,
      (msg) => {
        if (msg === null || got.length >= n) return
        got.push(msg)
        if (opts.noAck !== true && opts.ack !== false) ch.ack(msg)
        finish()
      },
      { noAck: opts.noAck === true, ...(opts.arguments !== undefined ? { arguments: opts.arguments } : {}) },
    ).then((ok) => {
      tag = ok.consumerTag
      finish()
    }, reject)
  })
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` until it returns true, or fails after `ms`. */
export async function until(fn: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Runs `op` on a fresh channel and resolves with the channel-close error it causes. */
export async function channelError(conn: amqp.ChannelModel, op: (ch: amqp.Channel) => Promise<unknown>): Promise<{ code: number; message: string }> {
  const ch = await conn.createChannel()
  const closed = new Promise<{ code: number; message: string }>((resolve) => ch.once('error', (e: { code: number; message: string }) => resolve(e)))
  await op(ch).then(
    () => undefined,
    () => undefined,
  )
  return closed
}
