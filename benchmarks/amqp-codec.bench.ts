// AMQP codec micro-benchmark: decode of basic.publish commands (method + header + body frames)
// and encode of basic.deliver, with no sockets.
//
//   npm run build && node dist/benchmarks/amqp-codec.bench.js
//
// Decode feeds a prepared stream in 64 KiB chunks (what a socket read gives), so frames also
// straddle chunk boundaries, through FrameParser and CommandAssembler, as the AMQP door will.
// Encode calls encodeDeliver per message. Each case runs a fixed number of messages, 5 times after
// a warm-up, and prints the median with min–max. Target: ≥ 500k publish commands/s decoded.

import { cpus } from 'node:os'
import { type BasicProperties, CommandAssembler, encodeContent, encodeDeliver, encodeProperties, FrameParser } from '../src/ingest/amqp/codec.js'

const runs = 5
const chunkBytes = 64 * 1024
const frameMax = 131_072

const body = Buffer.from(JSON.stringify({ ts: '2024-05-01T12:00:00.000Z', level: 'info', service: 'checkout', msg: 'order placed', orderId: 123456, userId: 'u-42', durationMs: 12.5 }))

interface Case {
  readonly name: string
  readonly properties: BasicProperties
}
const cases: Case[] = [
  { name: 'no properties', properties: {} },
  { name: 'typical properties', properties: { contentType: 'application/json', deliveryMode: 2, messageId: 'f3b2c1d0-0000-4000-8000-000000000001', timestamp: 1_714_564_800 } },
  { name: 'with 3 headers', properties: { contentType: 'application/json', deliveryMode: 2, headers: { service: 'checkout', level: 'info', attempt: 1 } } },
]

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

function report(label: string, rates: number[], unit: string): void {
  const fmt = (n: number) => `${(n / 1000).toFixed(0)}k`
  console.log(`${label.padEnd(44)} ${fmt(median(rates)).padStart(7)} ${unit}  (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})`)
}

function publishStream(c: Case, messages: number): { chunks: Buffer[]; frames: number } {
  const one = encodeContent(1, { name: 'basic.publish', exchange: 'logs', routingKey: 'checkout.info', mandatory: false, immediate: false }, c.properties, body, frameMax)
  const all = Buffer.alloc(one.length * messages)
  for (let i = 0; i < messages; i++) one.copy(all, i * one.length)
  const chunks: Buffer[] = []
  for (let at = 0; at < all.length; at += chunkBytes) chunks.push(all.subarray(at, Math.min(all.length, at + chunkBytes)))
  return { chunks, frames: messages * 3 }
}

function decodeOnce(chunks: readonly Buffer[]): { seconds: number; commands: number; bytes: number } {
  let commands = 0
  let bytes = 0 // consumed below so nothing can be optimised away
  const assembler = new CommandAssembler({ bodySizeMax: 1 << 20 })
  const parser = new FrameParser({
    protocolHeader: false,
    frameMax,
    onFrame: (frame) => {
      const command = assembler.push(frame)
      if (command && !(command instanceof Error)) {
        commands++
        bytes += command.body?.length ?? 0
      }
    },
  })
  const start = process.hrtime.bigint()
  for (const chunk of chunks) {
    const err = parser.feed(chunk)
    if (err) throw err
  }
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, commands, bytes }
}

function encodeOnce(c: Case, messages: number, preEncoded: boolean): { seconds: number; bytes: number } {
  const props = preEncoded ? encodeProperties(c.properties) : c.properties
  let bytes = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < messages; i++) bytes += encodeDeliver(1, 'amq.ctag-1', i + 1, false, 'logs', 'checkout.info', props, body, frameMax).length
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes }
}

const messages = 500_000
console.log(`AMQP codec, ${messages} messages of ${body.length}-byte bodies per run, ${runs} runs; node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}`)
for (const c of cases) {
  const { chunks, frames } = publishStream(c, messages)
  decodeOnce(chunks) // warm-up
  const commandRates: number[] = []
  const frameRates: number[] = []
  for (let r = 0; r < runs; r++) {
    const { seconds, commands } = decodeOnce(chunks)
    if (commands !== messages) throw new Error(`decoded ${commands} of ${messages}`)
    commandRates.push(commands / seconds)
    frameRates.push(frames / seconds)
  }
  report(`decode publish, ${c.name}`, commandRates, 'publishes/s')
  report(`decode publish, ${c.name}`, frameRates, 'frames/s')
}
for (const c of cases) {
  for (const preEncoded of [false, true]) {
    encodeOnce(c, messages, preEncoded)
    const rates: number[] = []
    for (let r = 0; r < runs; r++) rates.push(messages / encodeOnce(c, messages, preEncoded).seconds)
    report(`encodeDeliver, ${c.name}${preEncoded ? ', pre-encoded' : ''}`, rates, 'deliveries/s')
  }
}
