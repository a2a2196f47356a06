// Benchmark log events for the HTTP publish benchmark (issue 4): every event is a JSON object of
// exactly 250 bytes, {"ts":...,"service":"api","level":"info","msg":"...padding..."}, whose
// routing key under the `{service}.{level}` template is api.info.

export const eventBytes = 250

const baseTs = 1_732_550_400_000

/** Event number `i` as JSON text of exactly `eventBytes` bytes (ASCII only). */
export function eventLine(i: number): string {
  const head = `{"ts":${baseTs + i},"service":"api","level":"info","msg":"GET /v1/items/${i} 200 ${(i % 97) + 3}ms `
  const tail = '"}'
  const pad = eventBytes - head.length - tail.length
  if (pad < 0) throw new Error(`event ${i} does not fit in ${eventBytes} bytes`)
  const line = head + 'x'.repeat(pad) + tail
  if (Buffer.byteLength(line) !== eventBytes) throw new Error('event size mismatch')
  return line
}

/** `n` events, one a line, no trailing newline: the body of one NDJSON publish. */
export function ndjsonBody(n: number, first = 0): Buffer {
  const lines: string[] = []
  for (let i = 0; i < n; i++) lines.push(eventLine(first + i))
  return Buffer.from(lines.join('\n'))
}

/** One event as an application/json body. */
export function jsonBody(i = 0): Buffer {
  return Buffer.from(eventLine(i))
}
