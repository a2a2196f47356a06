import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { requireProgram } from '../helpers/programs.js'
import { readStream } from '../helpers/server.js'
import { tempDir } from '../helpers/temp.js'

// pika (RabbitMQ's Python client) against the AMQP door, as real python3 processes. Debian's
// python3 is where apt puts python3-pika (the PATH python3 may be another interpreter).
const TOTAL = 10_000
const QUEUE = 'pika-q'

const common = `
import sys, pika
port, queue, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
params = pika.ConnectionParameters(host='127.0.0.1', port=port, credentials=pika.PlainCredentials('guest', 'guest'))
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.queue_declare(queue=queue, durable=True)
`

// Publisher confirms, pipelined: pika's asynchronous SelectConnection with confirm_delivery gets
// basic.ack/nack for each delivery tag (multiple or not) while up to WINDOW messages are in flight.
// (BlockingChannel.confirm_delivery waits for each message in turn: 10,000 round trips through a
// group commit take too long for a test on a shared machine.)
const publisher = `
import sys, pika
port, queue, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
WINDOW = 500
params = pika.ConnectionParameters(host='127.0.0.1', port=port, credentials=pika.PlainCredentials('guest', 'guest'))
state = {'ch': None, 'sent': 0, 'low': 1, 'acked': set(), 'error': None}

def publish_more():
    ch = state['ch']
    while state['sent'] < total and state['sent'] - (state['low'] - 1) < WINDOW:
        n = state['sent']
        ch.basic_publish(exchange='', routing_key=queue, body=('{"n": %d}' % n).encode(),
                         properties=pika.BasicProperties(message_id='m-%d' % n, content_type='application/json',
                                                         delivery_mode=2, headers={'counter': n}))
        state['sent'] += 1

def on_confirm(frame):
    m = frame.method
    if isinstance(m, pika.spec.Basic.Nack):
        state['error'] = 'nack for delivery tag %d' % m.delivery_tag
        conn.close()
        return
    if m.multiple:
        state['acked'].update(range(state['low'], m.delivery_tag + 1))
    else:
        state['acked'].add(m.delivery_tag)
    while state['low'] in state['acked']:
        state['acked'].discard(state['low'])
        state['low'] += 1
    if state['low'] - 1 >= total:
        conn.close()
    else:
        publish_more()

def on_channel(ch):
    state['ch'] = ch
    ch.queue_declare(queue, durable=True, callback=lambda _f: ch.confirm_delivery(on_confirm, callback=lambda _f: publish_more()))

def on_error(_conn, err):
    state['error'] = 'connection failed: %r' % (err,)
    conn.ioloop.stop()

def on_closed(_conn, reason):
    if state['low'] - 1 < total and state['error'] is None:
        state['error'] = 'closed early: %r' % (reason,)
    conn.ioloop.stop()

conn = pika.SelectConnection(params, on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                             on_open_error_callback=on_error, on_close_callback=on_closed)
conn.ioloop.start()
if state['error'] is not None:
    sys.stderr.write(state['error'] + '\\n')
    sys.exit(1)
print('confirmed %d' % (state['low'] - 1), flush=True)
`

// One line per message (message id, header counter, body, redelivered), an ack per message,
// and a stop after the total.
const consumer = `${common}
ch.basic_qos(prefetch_count=200)
got = 0
out = []
def on_message(ch, method, props, body):
    global got
    out.append('%s %s %s %s' % (props.message_id, props.headers.get('counter'), body.decode(), method.redelivered))
    ch.basic_ack(delivery_tag=method.delivery_tag)
    got += 1
    if got >= total:
        ch.stop_consuming()
ch.basic_consume(queue=queue, on_message_callback=on_message)
ch.start_consuming()
sys.stdout.write('\\n'.join(out) + '\\n')
sys.stdout.flush()
conn.close()
`

function run(python: string, script: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.once('error', reject)
    p.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${script} exited with ${code ?? signal}: ${err}`))
    })
  })
}

describe('pika interop', () => {
  it('a pika publisher with confirms and a pika consumer with prefetch and acks move 10,000 messages once, in order', async () => {
    const python = requireProgram('/usr/bin/python3', 'python3')
    // Fails loudly (never skips) when the module is missing.
    const probe = await run(python, '-c', ['import pika; print(pika.__version__)'], 10_000).catch((e: Error) => {
      throw new Error(`python3-pika is not installed: install the Debian package "python3-pika" (.ci/run does this with apt-get)\n${e.message}`)
    })
    expect(probe.trim()).toMatch(/^\d+\./)
    const s = await startAmqpServer({ server: '  durability: { fsync: batch }' })
    const dir = await tempDir()
    const pub = join(dir, 'publisher.py')
    const con = join(dir, 'consumer.py')
    await writeFile(pub, publisher)
    await writeFile(con, consumer)
    const args = [String(s.amqpPort), QUEUE, String(TOTAL)]
    // Both at once: the consumer declares the same durable queue and waits for the messages.
    const [pubOut, conOut] = await Promise.all([run(python, pub, args, 50_000), run(python, con, args, 50_000)])
    expect(pubOut.trim()).toBe(`confirmed ${TOTAL}`)
    const lines = conOut.trim().split('\n')
    expect(lines).toHaveLength(TOTAL)
    const expected = Array.from({ length: TOTAL }, (_, n) => `m-${n} ${n} {"n": ${n}} False`)
    // Every message once, in publish order, never redelivered.
    expect(lines).toEqual(expected)
    // The stream holds each message once, under its message-id, and the group settled them all.
    const ids: Array<string | null> = []
    for (let from = 0; ; ) {
      const page = await readStream(s.url, QUEUE, from)
      if (page.events.length === 0) break
      ids.push(...page.events.map((e) => e.id))
      from = page.nextOffset
    }
    expect(ids).toEqual(Array.from({ length: TOTAL }, (_, n) => `m-${n}`))
    const stats = (await (await fetch(`${s.url}/v1/groups/${QUEUE}`)).json()) as { backlog: number; stream: string }
    expect(stats).toMatchObject({ stream: QUEUE, backlog: 0 })
  }, 60_000)
})
