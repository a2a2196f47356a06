import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AmqpProtocolError,
  type BasicProperties,
  type Command,
  CommandAssembler,
  decodeContentHeader,
  decodeProperties,
  encodeContent,
  encodeContentHeaderFrame,
  encodeDeliver,
  encodeFrame,
  encodeMethodFrame,
  encodeProperties,
  type Frame,
  FrameParser,
  HEARTBEAT_FRAME,
  ReplyCode,
  Typed,
} from '../../../src/ingest/amqp/codec.js'
import { properties, shortstr } from './arbitraries.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex')

function frames(bytes: Buffer, frameMax = 1 << 20): Frame[] {
  const out: Frame[] = []
  const err = new FrameParser({ protocolHeader: false, frameMax, onFrame: (f) => out.push(f) }).feed(bytes)
  expect(err).toBeUndefined()
  return out
}

describe('content header and properties', () => {
  it('round-trips all fourteen properties in any combination (property)', () => {
    fc.assert(
      fc.property(properties, fc.maxSafeNat(), (props, bodySize) => {
        const encoded = encodeProperties(props)
        expect(decodeProperties(encoded)).toEqual(props)
        const frame = encodeContentHeaderFrame(9, bodySize, props)
        expect(frames(frame)).toEqual([{ type: 2, channel: 9, header: { classId: 60, bodySize, properties: props } }])
      }),
      { numRuns: 500 },
    )
  })

  it('encodes flags and properties byte for byte', () => {
    const props: BasicProperties = { contentType: 'text/plain', headers: { a: 1 }, deliveryMode: 2, timestamp: 1_700_000_000, appId: 'x', clusterId: '' }
    // flags: content-type 15, headers 13, delivery-mode 12, timestamp 6, app-id 3, cluster-id 2
    const flags = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 6) | (1 << 3) | (1 << 2)
    expect(encodeProperties(props).toString('hex')).toBe(
      flags.toString(16).padStart(4, '0') + '0a' + ascii('text/plain') + '00000007 0161 49 00000001'.replace(/ /g, '') + '02' + '000000006553f100' + '0178' + '00',
    )
    expect(encodeProperties({}).toString('hex')).toBe('0000')
  })

  it('decodes a hand-written content header', () => {
    const payload = hex(`003c 0000 0000000000000400 9000 10 ${ascii('application/json')} 02`)
    expect(decodeContentHeader(payload)).toEqual({ classId: 60, bodySize: 1024, properties: { contentType: 'application/json', deliveryMode: 2 } })
  })

  it('accepts a zero continuation flags word and refuses properties basic does not have', () => {
    expect(decodeProperties(hex('0001 0000'))).toEqual({})
    for (const bad of ['0001 0004', '0002']) {
      expect(() => decodeProperties(hex(bad))).toThrow(AmqpProtocolError)
    }
  })
})

describe('encodeDeliver', () => {
  it('writes basic.deliver, its header and its body byte for byte', () => {
    const out = encodeDeliver(1, 'c', 1, false, '', 'q', { deliveryMode: 2 }, Buffer.from('hi'), 4096)
    expect(out).toEqual(
      hex(`
        01 0001 00000012 003c 003c 01 63 0000000000000001 00 00 01 71 ce
        02 0001 0000000f 003c 0000 0000000000000002 1000 02 ce
        03 0001 00000002 6869 ce`),
    )
  })

  it('equals encodeContent with a basic.deliver method, for any arguments (property)', () => {
    fc.assert(
      fc.property(
        fc.record({ channel: fc.integer({ min: 0, max: 0xffff }), consumerTag: shortstr, deliveryTag: fc.maxSafeNat(), redelivered: fc.boolean(), exchange: shortstr, routingKey: shortstr }),
        properties,
        fc.uint8Array({ maxLength: 20_000 }),
        fc.constantFrom(4096, 8192, 131_072, 0),
        (m, props, body, frameMax) => {
          const fast = encodeDeliver(m.channel, m.consumerTag, m.deliveryTag, m.redelivered, m.exchange, m.routingKey, props, body, frameMax)
          const { channel: _channel, ...args } = m
          const generic = encodeContent(m.channel, { name: 'basic.deliver', ...args }, props, body, frameMax)
          expect(fast.equals(generic)).toBe(true)
          expect(encodeDeliver(m.channel, m.consumerTag, m.deliveryTag, m.redelivered, m.exchange, m.routingKey, encodeProperties(props), body, frameMax).equals(fast)).toBe(true)
          const parsed = frames(fast, frameMax === 0 ? 1 << 20 : frameMax)
          expect(parsed[0]).toEqual({ type: 1, channel: m.channel, method: { name: 'basic.deliver', classId: 60, methodId: 60, ...args } })
          expect(parsed[1]).toEqual({ type: 2, channel: m.channel, header: { classId: 60, bodySize: body.length, properties: props } })
          const bodies = parsed.slice(2).map((f) => (f.type === 3 ? f.body : Buffer.alloc(0)))
          expect(Buffer.concat(bodies).equals(body)).toBe(true)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('cuts the body into frames of at most frame-max - 8 bytes, and sends no body frame for an empty body', () => {
    const sizes = (bodyBytes: number) =>
      frames(encodeDeliver(1, 'c', 1, false, 'e', 'k', {}, Buffer.alloc(bodyBytes), 4096), 4096)
        .filter((f) => f.type === 3)
        .map((f) => (f.type === 3 ? f.body.length : -1))
    expect(sizes(0)).toEqual([])
    expect(sizes(1)).toEqual([1])
    expect(sizes(4088)).toEqual([4088])
    expect(sizes(4089)).toEqual([4088, 1])
    expect(sizes(3 * 4088)).toEqual([4088, 4088, 4088])
  })

  it('refuses a header that cannot fit frame-max', () => {
    const headers = { big: 'x'.repeat(5000) }
    expect(() => encodeDeliver(1, 'c', 1, false, 'e', 'k', { headers }, Buffer.alloc(1), 4096)).toThrow(/content header frame of \d+ bytes is over frame-max 4096/)
    expect(() => encodeDeliver(1, 'c', 1, false, 'e', 'k', {}, Buffer.alloc(1), 8)).toThrow(RangeError)
  })

  it('keeps header value types through decode and re-encode, as RabbitMQ passes them on', () => {
    const headers = { 'x-delivery-count': new Typed('l', 3), retries: new Typed('s', 2), ratio: new Typed('f', 0.5), when: new Typed('T', 1_700_000_000) }
    const published = frames(encodeContentHeaderFrame(1, 5, { headers }))[0]!
    const props = published.type === 2 ? published.header.properties : {}
    expect(encodeProperties(props)).toEqual(encodeProperties({ headers }))
  })
})

describe('CommandAssembler', () => {
  const publish = { name: 'basic.publish', exchange: 'logs', routingKey: 'a.b', mandatory: false, immediate: false } as const

  function assemble(bytes: Buffer, bodySizeMax = 1 << 20): (Command | AmqpProtocolError)[] {
    const assembler = new CommandAssembler({ bodySizeMax })
    const out: (Command | AmqpProtocolError)[] = []
    for (const f of frames(bytes)) {
      const r = assembler.push(f)
      if (r) out.push(r)
      if (r instanceof AmqpProtocolError) break
    }
    return out
  }

  it('joins a content method, its header and its body frames, across interleaved channels and heartbeats', () => {
    const one = encodeContent(1, publish, { messageId: 'm1' }, Buffer.alloc(9000, 1), 4096)
    const two = encodeContent(2, publish, {}, Buffer.from('small'), 4096)
    // Interleave: ch1 method+header+first body, then all of ch2, a heartbeat, then the rest of ch1.
    const cut = encodeMethodFrame(1, publish).length + encodeContentHeaderFrame(1, 9000, { messageId: 'm1' }).length + 4096
    const bytes = Buffer.concat([one.subarray(0, cut), two, HEARTBEAT_FRAME, one.subarray(cut), encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: false })])
    const out = assemble(bytes)
    expect(out).toHaveLength(3)
    const [c2, c1, ack] = out as Command[]
    expect(c2).toMatchObject({ channel: 2, method: { name: 'basic.publish' }, header: { bodySize: 5 } })
    expect(c2!.body?.toString()).toBe('small')
    expect(c1).toMatchObject({ channel: 1, method: { name: 'basic.publish', routingKey: 'a.b' }, header: { bodySize: 9000, properties: { messageId: 'm1' } } })
    expect(c1!.body?.equals(Buffer.alloc(9000, 1))).toBe(true)
    expect(ack).toMatchObject({ channel: 1, method: { name: 'basic.ack' } })
    expect(ack!.header).toBeUndefined()
  })

  it('completes an empty body at its header, and passes a one-frame body as a view', () => {
    const [empty] = assemble(encodeContent(1, publish, {}, Buffer.alloc(0), 4096)) as Command[]
    expect(empty!.body?.length).toBe(0)
    const bytes = encodeContent(1, publish, {}, Buffer.from('abc'), 4096)
    const assembler = new CommandAssembler({ bodySizeMax: 100 })
    let command: Command | AmqpProtocolError | undefined
    new FrameParser({ protocolHeader: false, onFrame: (f) => (command = assembler.push(f) ?? command) }).feed(bytes)
    expect(command instanceof AmqpProtocolError ? undefined : command?.body?.buffer).toBe(bytes.buffer)
  })

  it('answers frames out of order with 505 UNEXPECTED_FRAME', () => {
    const method = encodeMethodFrame(1, publish)
    const header = encodeContentHeaderFrame(1, 3, {})
    const body = encodeFrame(3, 1, Buffer.from('abc'))
    const ack = encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: false })
    for (const bytes of [header, body, Buffer.concat([method, body]), Buffer.concat([method, ack]), Buffer.concat([method, header, header]), Buffer.concat([method, header, ack])]) {
      const out = assemble(bytes)
      const err = out.at(-1)
      expect(err).toBeInstanceOf(AmqpProtocolError)
      expect((err as AmqpProtocolError).replyCode).toBe(ReplyCode.UNEXPECTED_FRAME)
      expect((err as AmqpProtocolError).channel).toBe(1)
    }
  })

  it('answers a body past its declared size, or a declared size over the limit, with 501', () => {
    const over = assemble(Buffer.concat([encodeMethodFrame(1, publish), encodeContentHeaderFrame(1, 2, {}), encodeFrame(3, 1, Buffer.from('abc'))]))
    expect(over.at(-1)).toMatchObject({ kind: 'content-size', replyCode: ReplyCode.FRAME_ERROR, classId: 60, methodId: 40 })
    const big = assemble(Buffer.concat([encodeMethodFrame(1, publish), encodeContentHeaderFrame(1, 101, {})]), 100)
    expect(big.at(-1)).toMatchObject({ kind: 'content-size', replyCode: ReplyCode.FRAME_ERROR })
  })

  it('forgets a channel on reset', () => {
    const assembler = new CommandAssembler({ bodySizeMax: 100 })
    for (const f of frames(encodeMethodFrame(1, publish))) assembler.push(f)
    expect(assembler.pendingChannels).toBe(1)
    assembler.reset(1)
    expect(assembler.pendingChannels).toBe(0)
    const [f] = frames(encodeMethodFrame(1, { name: 'channel.close-ok' }))
    expect(assembler.push(f!)).toMatchObject({ channel: 1, method: { name: 'channel.close-ok' } })
  })
})
