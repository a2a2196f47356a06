import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { debianPython } from '../helpers/python.js'

// kombu (Debian's python3-kombu, Celery's messaging library) used directly: a producer and a
// consumer on a topic exchange, each binding key getting what matches it.

const run = promisify(execFile)

const script = `
import sys, json
from kombu import Connection, Exchange, Queue, Consumer, Producer

logs = Exchange('kombu-logs', type='topic', durable=True)
errors = Queue('kombu-errors', exchange=logs, routing_key='*.error')
everything = Queue('kombu-all', exchange=logs, routing_key='#')
got = {'kombu-errors': [], 'kombu-all': []}

with Connection(sys.argv[1]) as conn:
    with conn.channel() as ch:
        for q in (errors, everything):
            q(ch).declare()
        producer = Producer(ch, exchange=logs, serializer='json')
        for i, key in enumerate(['app.info', 'app.error', 'db.error', 'db.debug']):
            producer.publish({'n': i, 'key': key}, routing_key=key, declare=[logs])
    # One consumer per queue, each with its own callback: a delivery can arrive while the next
    # basic.consume is still being answered, before any tag-to-queue map could be filled.
    def collect(name):
        def on_message(body, message):
            got[name].append(body['key'])
            message.ack()
        return on_message
    with conn.channel() as ch:
        with Consumer(ch, queues=[errors], callbacks=[collect('kombu-errors')], accept=['json']), Consumer(ch, queues=[everything], callbacks=[collect('kombu-all')], accept=['json']):
            while len(got['kombu-errors']) < 2 or len(got['kombu-all']) < 4:
                conn.drain_events(timeout=10)
print(json.dumps(got, sort_keys=True))
`

describe('kombu', () => {
  it('producer and consumer on a topic exchange', async () => {
    const python = debianPython('kombu', 'python3-kombu')
    const s = await startAmqpServer()
    const { stdout } = await run(python, ['-c', script, `amqp://guest:guest@127.0.0.1:${s.amqpPort}//`], { timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({ 'kombu-all': ['app.info', 'app.error', 'db.error', 'db.debug'], 'kombu-errors': ['app.error', 'db.error'] })
  })
})
