import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AmqpProtocolError,
  decodeMethod,
  encodeMethod,
  encodeMethodFrame,
  type Frame,
  FrameParser,
  type Method,
  type MethodInit,
  type MethodName,
  methodNames,
  type MethodOf,
  ReplyCode,
} from '../../../src/ingest/amqp/codec.js'
import { methodArbitrary } from './arbitraries.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex')

// Every method the brief lists, so a gap in spec.ts fails here rather than in a client.
const required: MethodName[] = [
  'connection.start', 'connection.start-ok', 'connection.secure', 'connection.secure-ok', 'connection.tune', 'connection.tune-ok',
  'connection.open', 'connection.open-ok', 'connection.close', 'connection.close-ok', 'connection.blocked', 'connection.unblocked',
  'connection.update-secret', 'connection.update-secret-ok',
  'channel.open', 'channel.open-ok', 'channel.flow', 'channel.flow-ok', 'channel.close', 'channel.close-ok',
  'exchange.declare', 'exchange.declare-ok', 'exchange.delete', 'exchange.delete-ok', 'exchange.bind', 'exchange.bind-ok', 'exchange.unbind', 'exchange.unbind-ok',
  'queue.declare', 'queue.declare-ok', 'queue.bind', 'queue.bind-ok', 'queue.purge', 'queue.purge-ok', 'queue.delete', 'queue.delete-ok', 'queue.unbind', 'queue.unbind-ok',
  'basic.qos', 'basic.qos-ok', 'basic.consume', 'basic.consume-ok', 'basic.cancel', 'basic.cancel-ok', 'basic.publish', 'basic.return', 'basic.deliver',
  'basic.get', 'basic.get-ok', 'basic.get-empty', 'basic.ack', 'basic.reject', 'basic.recover-async', 'basic.recover', 'basic.recover-ok', 'basic.nack',
  'confirm.select', 'confirm.select-ok',
  'tx.select', 'tx.select-ok', 'tx.commit', 'tx.commit-ok', 'tx.rollback', 'tx.rollback-ok',
]

function parseFrames(bytes: Buffer): Frame[] {
  const frames: Frame[] = []
  const parser = new FrameParser({ protocolHeader: false, frameMax: 1 << 20, onFrame: (f) => frames.push(f) })
  expect(parser.feed(bytes)).toBeUndefined()
  return frames
}

function decodeError(payload: Buffer): AmqpProtocolError {
  try {
    decodeMethod(payload, 3)
  } catch (err) {
    expect(err).toBeInstanceOf(AmqpProtocolError)
    return err as AmqpProtocolError
  }
  throw new Error('expected a decode error')
}

describe('methods', () => {
  it('knows every method Sluice needs', () => {
    expect(methodNames).toEqual(expect.arrayContaining(required))
  })

  describe.each(methodNames)('%s', (name) => {
    it('round-trips generated arguments, alone and in a frame (property)', () => {
      fc.assert(
        fc.property(methodArbitrary(name), fc.integer({ min: 0, max: 0xffff }), (method, channel) => {
          const payload = encodeMethod(method)
          const decoded = decodeMethod(payload)
          expect(decoded).toEqual(method)
          expect(encodeMethod(decoded as MethodInit).equals(payload)).toBe(true)
          expect(parseFrames(encodeMethodFrame(channel, method))).toEqual([{ type: 1, channel, method }])
        }),
        { numRuns: 60 },
      )
    })

    it('refuses every truncation of its arguments with 502, and surplus bytes too', () => {
      const method = fc.sample(methodArbitrary(name), { numRuns: 1, seed: 7 })[0]!
      const payload = encodeMethod(method)
      for (let cut = 4; cut < payload.length; cut++) {
        const err = decodeError(payload.subarray(0, cut))
        expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR)
        expect(err.kind).toBe('syntax')
        expect([err.classId, err.methodId, err.channel]).toEqual([method.classId, method.methodId, 3])
      }
      const err = decodeError(Buffer.concat([payload, Buffer.from([0])]))
      expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR)
    })
  })

  it('fills reserved arguments when encoding and reports them when decoding', () => {
    const payload = encodeMethod({ name: 'queue.declare', queue: 'q', passive: false, durable: true, exclusive: false, autoDelete: true, nowait: false, arguments: {} })
    // u16 50 | u16 10 | ticket 0 | "q" | bits durable(1) + auto-delete(3) = 0x0a | empty table
    expect(payload.toString('hex')).toBe('0032000a' + '0000' + '0171' + '0a' + '00000000')
    expect(decodeMethod(payload)).toEqual({ name: 'queue.declare', classId: 50, methodId: 10, ticket: 0, queue: 'q', passive: false, durable: true, exclusive: false, autoDelete: true, nowait: false, arguments: {} })
  })

  it('packs eight and more consecutive bits LSB first, and restarts after other arguments', () => {
    // access.request: shortstr realm, then five bits.
    const payload = encodeMethod({ name: 'access.request', realm: '/data', exclusive: true, passive: false, active: true, write: false, read: true })
    expect(payload.subarray(4).toString('hex')).toBe('05' + ascii('/data') + '15')
    // basic.nack: longlong then two bits.
    expect(encodeMethod({ name: 'basic.nack', deliveryTag: 2 ** 40 + 1, multiple: false, requeue: true }).toString('hex')).toBe('003c0078' + '0000010000000001' + '02')
  })

  it('encodes connection.start byte for byte', () => {
    const frame = encodeMethodFrame(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: { product: 'Sluice', capabilities: { publisher_confirms: true } },
      mechanisms: Buffer.from('PLAIN'),
      locales: Buffer.from('en_US'),
    })
    // table: 07 "product" 'S' u32 6 "Sluice" (19 bytes) | 0c "capabilities" 'F' u32 23 (12 "publisher_confirms" 't' 01) (41 bytes)
    const table = '07' + ascii('product') + '53' + '00000006' + ascii('Sluice') + '0c' + ascii('capabilities') + '46' + '00000015' + '12' + ascii('publisher_confirms') + '74' + '01'
    const payload = '000a' + '000a' + '00' + '09' + '0000003a' + table + '00000005' + ascii('PLAIN') + '00000005' + ascii('en_US')
    expect(table.length / 2).toBe(58)
    expect(frame.toString('hex')).toBe('01' + '0000' + (payload.length / 2).toString(16).padStart(8, '0') + payload + 'ce')
    expect(payload.length / 2).toBe(4 + 2 + 62 + 9 + 9)
  })

  it('encodes connection.tune, channel.open-ok, basic.publish and basic.ack byte for byte', () => {
    expect(encodeMethodFrame(0, { name: 'connection.tune', channelMax: 2047, frameMax: 131072, heartbeat: 60 })).toEqual(hex('01 0000 0000000c 000a 001e 07ff 00020000 003c ce'))
    expect(encodeMethodFrame(1, { name: 'channel.open-ok' })).toEqual(hex('01 0001 00000008 0014 000b 00000000 ce'))
    expect(encodeMethodFrame(1, { name: 'basic.publish', exchange: 'logs', routingKey: 'a.b', mandatory: true, immediate: false })).toEqual(
      hex(`01 0001 00000010 003c 0028 0000 04 ${ascii('logs')} 03 ${ascii('a.b')} 01 ce`),
    )
    expect(encodeMethodFrame(7, { name: 'basic.ack', deliveryTag: 42, multiple: true })).toEqual(hex('01 0007 0000000d 003c 0050 000000000000002a 01 ce'))
    expect(encodeMethodFrame(0, { name: 'connection.close', replyCode: 501, replyText: 'bad', failingClassId: 60, failingMethodId: 40 })).toEqual(
      hex(`01 0000 0000000e 000a 0032 01f5 03 ${ascii('bad')} 003c 0028 ce`),
    )
  })

  it('decodes a hand-written basic.publish with the fast path and the table path alike', () => {
    const payload = hex(`003c 0028 0000 04 ${ascii('logs')} 03 ${ascii('a.b')} 03`)
    const expected: MethodOf<'basic.publish'> = { name: 'basic.publish', classId: 60, methodId: 40, ticket: 0, exchange: 'logs', routingKey: 'a.b', mandatory: true, immediate: true }
    expect(decodeMethod(payload)).toEqual(expected)
    const m: Method = decodeMethod(payload)
    if (m.name === 'basic.publish') expect(m.routingKey).toBe('a.b') // the union narrows on name
  })

  it('answers an unknown class or method with 540 NOT_IMPLEMENTED and its ids', () => {
    for (const [classId, methodId] of [[60, 41], [99, 10], [30000, 1], [10, 0xffff]] as const) {
      const payload = Buffer.alloc(8)
      payload.writeUInt16BE(classId, 0)
      payload.writeUInt16BE(methodId, 2)
      const err = decodeError(payload)
      expect(err.replyCode).toBe(ReplyCode.NOT_IMPLEMENTED)
      expect(err.kind).toBe('not-implemented')
      expect([err.classId, err.methodId]).toEqual([classId, methodId])
    }
  })

  it('answers a payload too short for its ids with 501', () => {
    expect(decodeError(hex('003c00')).replyCode).toBe(ReplyCode.FRAME_ERROR)
  })

  it('refuses bad arguments when encoding, as programmer errors', () => {
    expect(() => encodeMethod({ name: 'basic.consume-ok', consumerTag: 'x'.repeat(256) })).toThrow(RangeError)
    expect(() => encodeMethod({ name: 'basic.qos', prefetchSize: 0, prefetchCount: 70000, global: false })).toThrow(RangeError)
    expect(() => encodeMethod({ name: 'basic.ack', multiple: false } as unknown as MethodInit)).toThrow(/missing argument deliveryTag/)
    expect(() => encodeMethod({ name: 'nope' } as unknown as MethodInit)).toThrow(TypeError)
  })

  it('types each method from the spec table', () => {
    // @ts-expect-error deliveryTag is required
    expect(() => encodeMethod({ name: 'basic.ack', multiple: false })).toThrow(TypeError)
    // @ts-expect-error routingKey is a string
    expect(() => encodeMethod({ name: 'basic.publish', exchange: '', routingKey: 1, mandatory: false, immediate: false })).toThrow(TypeError)
    // Reserved arguments (ticket) may be left out; the ids may be given but must match the name.
    expect(encodeMethod({ name: 'basic.get', classId: 60, methodId: 70, queue: 'q', noAck: true })).toEqual(hex(`003c 0046 0000 01 ${ascii('q')} 01`))
  })

  it('never throws anything but AmqpProtocolError on random arguments (property)', () => {
    const ids = methodNames.map((n) => decodeMethod(encodeMethod(fc.sample(methodArbitrary(n), { numRuns: 1, seed: 1 })[0]!)))
    fc.assert(
      fc.property(fc.constantFrom(...ids), fc.uint8Array({ maxLength: 40 }), (m, args) => {
        const payload = Buffer.alloc(4 + args.length)
        payload.writeUInt16BE(m.classId, 0)
        payload.writeUInt16BE(m.methodId, 2)
        payload.set(args, 4)
        try {
          decodeMethod(payload)
        } catch (err) {
          expect(err).toBeInstanceOf(AmqpProtocolError)
        }
      }),
      { numRuns: 3000 },
    )
  })
})
