// Fuzz targets for the AMQP 0-9-1 codec: the frame stream (FrameParser + CommandAssembler, with
// method decoding and content headers inside), method payloads, and field tables. Seeds are what
// amqplib and pika send: the handshake, declarations with x-arguments, publishes with properties
// and headers of every field type, acks, transactions.

import { isDeepStrictEqual } from 'node:util'
import {
  AmqpProtocolError,
  CommandAssembler,
  decodeFieldTable,
  decodeMethod,
  encodeContent,
  encodeFieldTable,
  encodeMethod,
  encodeMethodFrame,
  type FieldTable,
  FrameParser,
  HEARTBEAT_FRAME,
  type MethodInit,
  methodNames,
  PROTOCOL_HEADER,
  ReplyCode,
  Typed,
} from '../../src/ingest/amqp/codec.js'
import { methodSpecs } from '../../src/ingest/amqp/spec.js'
import { check, checkMessage, type FuzzTarget, mutate, type MutateOptions, randomChunks, Rng } from './engine.js'

const replyCodes = new Set<number>(Object.values(ReplyCode))

/** A table with every field type, as clients send them (amqplib sends small ints as 's'). */
const richTable: FieldTable = {
  'x-message-ttl': new Typed('s', 1000),
  'x-max-length': 100,
  'x-max-length-bytes': 1_000_000_000_000,
  'x-dead-letter-exchange': 'dlx',
  'x-queue-type': 'stream',
  'x-stream-offset': new Typed('T', 1_764_086_192),
  bool: true,
  byte: new Typed('b', -5),
  ubyte: new Typed('B', 200),
  ushort: new Typed('u', 65535),
  uint: new Typed('i', 4_000_000_000),
  long: -(2n ** 62n),
  float: new Typed('f', 1.5),
  double: 2.25,
  decimal: new Typed('D', { scale: 2, digits: 12345 }),
  bytes: Buffer.from([0, 1, 2, 0xff]),
  latin: new Typed('S', Buffer.from([0x61, 0xff])),
  void: null,
  list: [1, 'two', [3, { four: 4 }], null],
  nested: { a: { b: { c: { d: 'deep' } } } },
}

const clientProperties: FieldTable = {
  product: 'amqplib',
  version: '0.10.4',
  platform: 'Node.JS v20.20.2',
  information: 'https://amqp-node.github.io/amqplib/',
  capabilities: { publisher_confirms: true, exchange_exchange_bindings: true, 'basic.nack': true, consumer_cancel_notify: true, 'connection.blocked': true, authentication_failure_close: true },
}

const properties = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: richTable,
  deliveryMode: 2,
  priority: 5,
  correlationId: 'c-1',
  replyTo: 'amq.rabbitmq.reply-to',
  expiration: '60000',
  messageId: 'm-1',
  timestamp: 1_764_086_192,
  type: 'log',
  userId: 'guest',
  appId: 'fuzz',
  clusterId: '',
}

const FRAME_MAX_SMALL = 4096

function handshake(): Buffer {
  return Buffer.concat([
    PROTOCOL_HEADER,
    encodeMethodFrame(0, { name: 'connection.start-ok', clientProperties, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }),
    encodeMethodFrame(0, { name: 'connection.tune-ok', channelMax: 2047, frameMax: 131072, heartbeat: 60 }),
    encodeMethodFrame(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false }),
  ])
}

function channelOps(channel: number): Buffer[] {
  const publish = (body: Buffer, props: object) =>
    encodeContent(channel, { name: 'basic.publish', ticket: 0, exchange: 'logs', routingKey: 'web.error', mandatory: true, immediate: false }, props, body, FRAME_MAX_SMALL)
  return [
    encodeMethodFrame(channel, { name: 'channel.open', outOfBand: '' }),
    encodeMethodFrame(channel, { name: 'confirm.select', nowait: false }),
    encodeMethodFrame(channel, { name: 'exchange.declare', ticket: 0, exchange: 'logs', type: 'topic', passive: false, durable: true, autoDelete: false, internal: false, nowait: false, arguments: { 'alternate-exchange': 'unrouted' } }),
    encodeMethodFrame(channel, { name: 'queue.declare', ticket: 0, queue: '', passive: false, durable: false, exclusive: true, autoDelete: true, nowait: false, arguments: richTable }),
    encodeMethodFrame(channel, { name: 'queue.bind', ticket: 0, queue: 'q', exchange: 'logs', routingKey: '#', nowait: false, arguments: {} }),
    encodeMethodFrame(channel, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 100, global: false }),
    encodeMethodFrame(channel, { name: 'basic.consume', ticket: 0, queue: 'q', consumerTag: 'amq.ctag-1', noLocal: false, noAck: false, exclusive: false, nowait: false, arguments: { 'x-priority': 1 } }),
    publish(Buffer.from('{"level":"error","msg":"boom"}'), properties),
    publish(Buffer.alloc(10_000, 0x61), { headers: { n: 1 } }), // three body frames at frame-max 4096
    publish(Buffer.alloc(0), {}),
    encodeMethodFrame(channel, { name: 'basic.ack', deliveryTag: 1, multiple: true }),
    encodeMethodFrame(channel, { name: 'basic.nack', deliveryTag: 2, multiple: false, requeue: true }),
    encodeMethodFrame(channel, { name: 'basic.reject', deliveryTag: 3, requeue: false }),
    encodeMethodFrame(channel, { name: 'basic.get', ticket: 0, queue: 'q', noAck: true }),
    encodeMethodFrame(channel, { name: 'basic.recover', requeue: true }),
    encodeMethodFrame(channel, { name: 'tx.select' }),
    encodeMethodFrame(channel, { name: 'tx.commit' }),
    encodeMethodFrame(channel, { name: 'basic.cancel', consumerTag: 'amq.ctag-1', nowait: false }),
    encodeMethodFrame(channel, { name: 'channel.close', replyCode: 200, replyText: 'bye', failingClassId: 0, failingMethodId: 0 }),
  ]
}

function frameStreams(): Buffer[] {
  const a = channelOps(1)
  const c = channelOps(2)
  const interleaved: Buffer[] = []
  for (let i = 0; i < a.length; i++) interleaved.push(a[i]!, c[i]!)
  return [
    Buffer.concat([handshake(), ...a, HEARTBEAT_FRAME]),
    Buffer.concat([handshake(), ...interleaved, encodeMethodFrame(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', failingClassId: 0, failingMethodId: 0 })]),
    Buffer.concat([handshake(), HEARTBEAT_FRAME, HEARTBEAT_FRAME]),
    Buffer.concat(a.slice(0, 10)),
  ]
}

const amqpDictionary = [
  Buffer.from([0xce]), Buffer.from([1, 0, 1]), Buffer.from([2, 0, 1]), Buffer.from([3, 0, 1]), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]), Buffer.from([0, 60, 0, 40]), Buffer.from([0, 10, 0, 11]),
  Buffer.from('AMQP'), Buffer.from([0, 0, 9, 1]), Buffer.from('F'), Buffer.from('A'), Buffer.from('S'), Buffer.from('x'), Buffer.from('V'), Buffer.from('l'), Buffer.from('d'), Buffer.from('D'), Buffer.from('T'),
  Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x7f, 0xff, 0xff, 0xff]), Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xfe]), Buffer.from([0xff]),
]

interface StreamResult {
  readonly frames: unknown[]
  readonly error: string | undefined
  readonly maxBuffered: number
}

function parseStream(chunks: readonly Buffer[], frameMax: number, protocolHeader: boolean): StreamResult {
  const frames: unknown[] = []
  let failure: AmqpProtocolError | undefined
  const assembler = new CommandAssembler({ bodySizeMax: 64 * 1024 })
  const parser = new FrameParser({
    frameMax,
    protocolHeader,
    onFrame: (frame) => {
      // After a failure the door stops reading: frames later in the same chunk do not count.
      if (failure !== undefined) return
      frames.push(frame)
      const out = assembler.push(frame)
      if (out instanceof AmqpProtocolError) failure = out
      else if (out !== undefined) frames.push({ command: out.method.name, channel: out.channel, bodyBytes: out.body?.length ?? -1 })
    },
  })
  let maxBuffered = 0
  for (const chunk of chunks) {
    const err = parser.feed(chunk)
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes)
    check(parser.bufferedBytes <= frameMax, 'memory', () => `parser holds ${parser.bufferedBytes} bytes, frame-max ${frameMax}`)
    if (err !== undefined) {
      check(err instanceof AmqpProtocolError, 'crash', () => `feed returned ${String(err)}`)
      failure ??= err
      break
    }
    if (failure !== undefined) break
  }
  if (failure !== undefined) checkProtocolError(failure)
  // The message may quote the bytes seen so far (a bad protocol header), which depends on the chunks.
  return { frames, error: failure === undefined ? undefined : `${failure.kind} ${failure.replyCode}`, maxBuffered }
}

function checkProtocolError(err: AmqpProtocolError): void {
  check(replyCodes.has(err.replyCode), 'wrong', () => `reply code ${err.replyCode} is not an AMQP reply code`)
  checkMessage(err.message, `AMQP ${err.kind} error`, 1024)
  // The text goes into connection.close as a shortstr: at most 255 bytes once cut by the door.
  check(Number.isInteger(err.classId) && Number.isInteger(err.methodId) && err.classId >= 0 && err.classId <= 0xffff && err.methodId >= 0 && err.methodId <= 0xffff, 'wrong', () => `class/method ids ${err.classId}.${err.methodId}`)
}

export function amqpFramesTarget(): FuzzTarget {
  const corpus = frameStreams()
  const opts: MutateOptions = { maxBytes: 32 * 1024, dictionary: amqpDictionary, corpus }
  return {
    name: 'amqp-frames',
    what: 'FrameParser + CommandAssembler (src/ingest/amqp/frames.ts, commands.ts; methods, content headers and field tables inside), random socket chunks',
    caseTimeMs: 100,
    generate(rng) {
      const head = Buffer.allocUnsafe(5)
      head[0] = rng.u32() & 0xff
      head.writeUInt32BE(rng.u32(), 1)
      return Buffer.concat([head, mutate(rng, rng.pick(corpus), opts)])
    },
    run(input) {
      if (input.length < 5) return 'short input'
      const flags = input[0]!
      const payload = input.subarray(5)
      const frameMax = flags & 1 ? FRAME_MAX_SMALL : 131_072
      // Without the protocol header, start at the first frame (the fuzzed bytes reach frames more often).
      const protocolHeader = (flags & 2) === 0
      const body = protocolHeader ? payload : payload.subarray(Math.min(payload.length, PROTOCOL_HEADER.length))
      const whole = parseStream([body], frameMax, protocolHeader)
      const chunked = parseStream(randomChunks(new Rng(input.readUInt32BE(1)), body), frameMax, protocolHeader)
      check(whole.error === chunked.error, 'wrong', () => `error differs between whole and chunked: ${whole.error} vs ${chunked.error}`)
      check(isDeepStrictEqual(whole.frames, chunked.frames), 'wrong', () => `frames differ between whole (${whole.frames.length}) and chunked (${chunked.frames.length})`)
      return whole.error === undefined ? 'frames, no error' : `error ${whole.error.split(' ')[0]}`
    },
  }
}

// ---- methods ---------------------------------------------------------------------------------

function sampleArgs(name: (typeof methodNames)[number]): MethodInit {
  const [, , args] = methodSpecs[name]
  const m: Record<string, unknown> = { name }
  for (const [arg, type] of args) {
    m[arg] = { octet: 1, short: 2, long: 3, longlong: 4, shortstr: 'abc', longstr: Buffer.from('xyz'), bit: true, table: { a: 1, t: richTable } }[type]
  }
  return m as unknown as MethodInit
}

/**
 * A decoded method must encode back (the door echoes names, tags and keys in its answers and
 * deliveries) and decode to itself again.
 */
function checkReencode(method: MethodInit & { name: string }): void {
  let bytes: Buffer
  try {
    bytes = encodeMethod(method)
  } catch (err) {
    check(false, 'wrong', () => `re-encode: ${method.name} decodes but cannot be encoded back: ${String(err)}`)
    throw err
  }
  check(isDeepStrictEqual(decodeMethod(bytes), method), 'wrong', () => `re-encode: ${method.name} changes when encoded and decoded again`)
}

export function amqpMethodsTarget(): FuzzTarget {
  const corpus = methodNames.map((n) => encodeMethod(sampleArgs(n)))
  corpus.push(encodeMethod({ name: 'connection.start-ok', clientProperties, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }))
  const opts: MutateOptions = { maxBytes: 8 * 1024, dictionary: amqpDictionary, corpus }
  return {
    name: 'amqp-methods',
    what: 'decodeMethod (src/ingest/amqp/methods.ts) on every method\'s payload, and encode → decode of what it accepts',
    caseTimeMs: 50,
    generate(rng) {
      return mutate(rng, rng.pick(corpus), opts)
    },
    run(input) {
      let method
      try {
        method = decodeMethod(input, 1)
      } catch (err) {
        check(err instanceof AmqpProtocolError, 'crash', () => `decodeMethod threw ${String(err)}`)
        checkProtocolError(err as AmqpProtocolError)
        return `error ${(err as AmqpProtocolError).kind}`
      }
      checkReencode(method)
      return 'decoded'
    },
  }
}

// ---- field tables ----------------------------------------------------------------------------

export function amqpFieldTableTarget(): FuzzTarget {
  const deep: FieldTable = {}
  let at = deep
  for (let i = 0; i < 40; i++) {
    const next: FieldTable = {}
    at[`l${i}`] = i % 2 === 0 ? next : [next]
    at = next
  }
  const corpus = [richTable, clientProperties, {}, deep, { a: [[[[[]]]]] }, { '': '', k: new Typed('S', Buffer.alloc(300, 0xff)) }].map((t) => encodeFieldTable(t))
  const opts: MutateOptions = { maxBytes: 8 * 1024, dictionary: amqpDictionary, corpus }
  return {
    name: 'amqp-field-table',
    what: 'decodeFieldTable (src/ingest/amqp/field-table.ts), and encode → decode of what it accepts',
    caseTimeMs: 50,
    generate(rng) {
      return mutate(rng, rng.pick(corpus), opts)
    },
    run(input) {
      let table: FieldTable
      try {
        table = decodeFieldTable(input)
      } catch (err) {
        check(err instanceof AmqpProtocolError, 'crash', () => `decodeFieldTable threw ${String(err)}`)
        checkProtocolError(err as AmqpProtocolError)
        return `error ${(err as AmqpProtocolError).kind}`
      }
      let bytes: Buffer
      try {
        bytes = encodeFieldTable(table)
      } catch (err) {
        check(false, 'wrong', () => `re-encode: a decoded table cannot be encoded back: ${String(err)}`)
        throw err
      }
      check(isDeepStrictEqual(decodeFieldTable(bytes), table), 'wrong', () => 're-encode: a decoded table changes when encoded and decoded again')
      return bytes.equals(input) ? 'decoded, same bytes back' : 'decoded, other bytes back'
    },
  }
}
