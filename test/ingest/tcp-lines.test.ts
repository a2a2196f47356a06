// LineSplitter, the TCP NDJSON door's line splitting: the limit applies to the line without its
// CR and LF, and no more than the limit (plus a CR) is ever held.

import { describe, expect, it } from 'vitest'
import { LineSplitter } from '../../src/ingest/tcp/lines.js'

function split(chunks: string[], max: number): { lines: string[]; tooLong: [number, number, string][]; maxBuffered: number } {
  const out = { lines: [] as string[], tooLong: [] as [number, number, string][], maxBuffered: 0 }
  const s = new LineSplitter(
    max,
    (line, n) => out.lines.push(`${n}:${line.toString()}`),
    (prefix, bytes, n) => out.tooLong.push([n, bytes, prefix.toString()]),
  )
  for (const c of chunks) {
    s.push(Buffer.from(c))
    out.maxBuffered = Math.max(out.maxBuffered, s.bufferedBytes)
  }
  s.end()
  return out
}

const bytewise = (s: string): string[] => [...s]

describe('LineSplitter', () => {
  it('a line of exactly maxLineBytes passes with LF and with CRLF, whole or byte by byte', () => {
    for (const text of ['abcd\nefgh\r\nijklm\n', 'abcd\r\nefgh\nijklm\r\n']) {
      for (const chunks of [[text], bytewise(text)]) {
        const r = split(chunks, 4)
        expect(r.lines).toEqual(['1:abcd', '2:efgh'])
        expect(r.tooLong).toEqual([[3, text.endsWith('\r\n') ? 6 : 5, 'ijkl']])
        expect(r.maxBuffered).toBeLessThanOrEqual(5)
      }
    }
  })

  it('a last line without LF loses a trailing CR too, and is still held to the limit', () => {
    expect(split(['a\r\nb\r'], 4).lines).toEqual(['1:a', '2:b'])
    expect(split(['abcd\r'], 4).lines).toEqual(['1:abcd'])
    expect(split(bytewise('abcde'), 4)).toEqual({ lines: [], tooLong: [[1, 5, 'abcd']], maxBuffered: 5 })
  })

  it('a 1 MB line past the limit is reported once with its first bytes, and the next line arrives', () => {
    const r = split(['x\n', 'y'.repeat(1024 * 1024), '\nz\n'], 100)
    expect(r.lines).toEqual(['1:x', '3:z'])
    expect(r.tooLong).toEqual([[2, 1024 * 1024, 'y'.repeat(100)]])
    expect(r.maxBuffered).toBe(0)
  })
})
