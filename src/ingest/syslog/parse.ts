// Syslog message parser: one frame (a TCP frame from framing.ts, or a UDP datagram) in, one event
// out. Pure and synchronous; it works on the bytes with index arithmetic, with no regex and no
// closure per frame, because every syslog message passes through it.
//
// RFC 5424 (`<PRI>1 ` starts it):
//   <PRI>1 SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
//   Any header field may be the NILVALUE `-` (→ null). SD is `-` or one or more
//   `[SD-ID *(SP PARAM="value")]`; inside a value `\"`, `\\` and `\]` are unescaped, a backslash
//   before anything else stays, and a bare `[` is just a character. MSG starts right after the
//   single SP that follows SD, so a further leading space is part of the message (RFC 5424 §6.4;
//   rsyslog's 5424 output of BSD input really sends `- -  request slow`, message " request slow").
// RFC 3164 and what BSD-style senders really write (anything else after PRI):
//   <PRI>[TIMESTAMP SP][HOSTNAME SP]TAG[`[`PID`]`][:] SP MSG
//   TIMESTAMP is `Mmm dd hh:mm:ss` (day space-padded), optionally with a fraction, a year before
//   the time or `UTC`, as network devices send it, or an RFC 3339 time (rsyslog ForwardFormat).
//   Cisco IOS puts a sequence number and a clock marker first (`<189>123: *Nov 25 …: %LINK-…`).
//   The message starts after the TAG, its optional `:` and one SP.
//
// Leniency: a frame is an error only when it is not syslog at all: empty, a broken PRI (`<999>`,
// `<x>`), or no PRI and bytes that are not text (control bytes, invalid UTF-8). Everything else
// becomes an event, keeping the text in `message` whenever a header part cannot be read:
// - no PRI: user.notice (PRI 13), as RFC 3164 §4.3.3 says a relay must assume;
// - a timestamp that is `-`, missing or invalid: `receivedAt`;
// - BSD times have no year and no zone: UTC, and the year that puts the time at most one day after
//   `receivedAt` (Dec 31 23:59:59 received on Jan 1 is last year; Jan 1 00:00:02 received on
//   Dec 31 23:59:50 is next year; Feb 29 is the latest leap year that fits);
// - malformed STRUCTURED-DATA, or a 5424 frame without an SD field: structuredData null, and the
//   text from there on is the message;
// - no hostname (`-`, or omitted): `remoteAddress` when given (as syslog-ng does), else null.
//   Omitted is recognised in BSD frames when the token after the time is plainly a tag: it ends in
//   `:` (and is not an IPv6 address), holds a `[`, or is a Cisco `%FAC-SEV-MNEMONIC`; journald and
//   libc's syslog() write `<30>Nov 25 15:56:32 systemd[1]: …` with no host;
// - a UTF-8 BOM at the start of MSG is removed; invalid UTF-8 becomes U+FFFD; one trailing LF (or
//   CRLF) is removed, since UDP datagrams from rsyslog and syslog-ng end in one.
// Timestamps are cut (not rounded) to milliseconds, as ISO 8601 UTC.

import { isUtf8 } from 'node:buffer'

const TAB = 0x09
const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const QUOTE = 0x22
const PERCENT = 0x25
const STAR = 0x2a
const PLUS = 0x2b
const DASH = 0x2d
const DOT = 0x2e
const DIGIT_0 = 0x30
const DIGIT_1 = 0x31
const DIGIT_9 = 0x39
const COLON = 0x3a
const LT = 0x3c
const EQUALS = 0x3d
const GT = 0x3e
const LBRACKET = 0x5b
const BACKSLASH = 0x5c
const RBRACKET = 0x5d
const DEL = 0x7f

const facilityNames = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const
const severityNames = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const

export type SyslogFacility = (typeof facilityNames)[number]
export type SyslogSeverity = (typeof severityNames)[number]

/** One syslog message as Sluice stores it (the event body, as JSON). */
export interface SyslogEvent {
  /** ISO 8601 UTC with milliseconds: the message's time, else the time it was received. */
  timestamp: string
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  facility: SyslogFacility
  severity: SyslogSeverity
  /** RFC 5424 STRUCTURED-DATA, unescaped; null for `-`, for RFC 3164, and when malformed. */
  structuredData: Record<string, Record<string, string>> | null
  message: string
}

/** A frame that is not syslog at all, and why. */
export interface SyslogParseError {
  error: string
}

export interface SyslogParseOptions {
  /** When the frame arrived, in ms since the epoch: the time of messages without one, and the reference for BSD years. */
  receivedAt: number
  /** The sender's address: the host of messages that name none. */
  remoteAddress?: string
}

/** The PRI of a message without one: user.notice. */
export const syslogDefaultPri = 13

/** Parses one syslog frame. Never throws on any input. */
export function parseSyslog(frame: Buffer, opts: SyslogParseOptions): SyslogEvent | SyslogParseError {
  let end = frame.length
  if (end > 0 && frame[end - 1] === LF) {
    end--
    if (end > 0 && frame[end - 1] === CR) end--
  }
  if (end === 0) return { error: 'empty frame' }
  let pri = syslogDefaultPri
  let pos = 0
  if (frame[0] === LT) {
    let value = 0
    let i = 1
    for (; i < end && i <= 3; i++) {
      const c = frame[i]!
      if (c < DIGIT_0 || c > DIGIT_9) break
      value = value * 10 + (c - DIGIT_0)
    }
    if (i === 1 || i >= end || frame[i] !== GT) return { error: `no valid PRI: expected "<", 1 to 3 digits and ">", got ${preview(frame, end)}` }
    if (value > 191) return { error: `PRI ${value} is over 191 (facility 23, severity 7): ${preview(frame, end)}` }
    pri = value
    pos = i + 1
    // "1 " after PRI is VERSION 1: RFC 5424. Anything else is BSD style.
    if (pos + 1 < end && frame[pos] === DIGIT_1 && frame[pos + 1] === SP) return parse5424(frame, pos + 2, end, pri, opts)
  } else if (!isText(frame, end)) {
    return { error: `no PRI, and the frame is not text (control bytes or invalid UTF-8): ${preview(frame, end)}` }
  }
  return parse3164(frame, pos, end, pri, opts)
}

/** True for the result of a frame that could not be parsed. */
export function isSyslogParseError(result: SyslogEvent | SyslogParseError): result is SyslogParseError {
  return 'error' in result
}

// ---- RFC 5424 --------------------------------------------------------------------------------

function parse5424(b: Buffer, pos: number, end: number, pri: number, opts: SyslogParseOptions): SyslogEvent {
  let e = spaceOrEnd(b, pos, end)
  let time = e - pos === 1 && b[pos] === DASH ? NaN : parseRfc3339(b, pos, e)
  if (time !== time) time = opts.receivedAt // `-` or unreadable: the receive time
  pos = e + 1
  // A frame cut short leaves the remaining fields null.
  let host: string | null = null
  let app: string | null = null
  let procid: string | null = null
  let msgid: string | null = null
  if (pos < end) {
    e = spaceOrEnd(b, pos, end)
    host = nilOrText(b, pos, e)
    pos = e + 1
  }
  if (pos < end) {
    e = spaceOrEnd(b, pos, end)
    app = nilOrText(b, pos, e)
    pos = e + 1
  }
  if (pos < end) {
    e = spaceOrEnd(b, pos, end)
    procid = nilOrText(b, pos, e)
    pos = e + 1
  }
  if (pos < end) {
    e = spaceOrEnd(b, pos, end)
    msgid = nilOrText(b, pos, e)
    pos = e + 1
  }
  let structuredData: Record<string, Record<string, string>> | null = null
  let msgStart = pos
  if (pos < end) {
    const c = b[pos]
    if (c === DASH && (pos + 1 === end || b[pos + 1] === SP)) {
      msgStart = pos + 1
    } else if (c === LBRACKET) {
      structuredData = parseStructuredData(b, pos, end)
      if (structuredData !== null) msgStart = sdEnd
    }
    // Anything else: no SD field at all (or a broken one); the message starts at `pos`.
    if (msgStart !== pos && msgStart < end && b[msgStart] === SP) msgStart++
  }
  return {
    timestamp: isoTime(time),
    host: host ?? opts.remoteAddress ?? null,
    app,
    procid,
    msgid,
    facility: facilityNames[pri >> 3]!,
    severity: severityNames[pri & 7]!,
    structuredData,
    message: messageText(b, msgStart, end),
  }
}

// Where parseStructuredData stopped: module state instead of a result object, to allocate nothing.
let sdEnd = 0

// Parses `[id p="v" …][…]…` from `pos` (a `[`). Returns null when it is malformed.
function parseStructuredData(b: Buffer, pos: number, end: number): Record<string, Record<string, string>> | null {
  const sd: Record<string, Record<string, string>> = {}
  while (pos < end && b[pos] === LBRACKET) {
    pos++
    const idStart = pos
    while (pos < end) {
      const c = b[pos]!
      if (c === SP || c === RBRACKET || c === EQUALS || c === QUOTE) break
      pos++
    }
    if (pos === idStart || pos === end) return null
    const id = token(b, idStart, pos)
    let element = Object.hasOwn(sd, id) ? sd[id]! : null // a repeated SD-ID adds to the first
    if (element === null) {
      element = {}
      setOwn(sd, id, element)
    }
    for (;;) {
      while (pos < end && b[pos] === SP) pos++
      if (pos === end) return null
      if (b[pos] === RBRACKET) {
        pos++
        break
      }
      const nameStart = pos
      while (pos < end) {
        const c = b[pos]!
        if (c === EQUALS || c === SP || c === RBRACKET || c === QUOTE) break
        pos++
      }
      if (pos === nameStart || pos + 1 >= end || b[pos] !== EQUALS || b[pos + 1] !== QUOTE) return null
      const name = token(b, nameStart, pos)
      pos += 2
      const valueStart = pos
      let escaped = false
      while (pos < end) {
        const c = b[pos]!
        if (c === QUOTE) break
        if (c === BACKSLASH) {
          escaped = true
          pos += 2 // the escaped byte can be a quote; a backslash is never inside a UTF-8 sequence
        } else {
          pos++
        }
      }
      if (pos >= end) return null
      const raw = token(b, valueStart, pos)
      setOwn(element, name, escaped ? unescapeParamValue(raw) : raw) // a repeated name: the last value wins
      pos++
    }
  }
  sdEnd = pos
  return sd
}

// RFC 5424 §6.3.3: `\"`, `\\` and `\]` stand for the character; a backslash before anything else is kept.
function unescapeParamValue(raw: string): string {
  let out = ''
  let from = 0
  let i = raw.indexOf('\\')
  while (i !== -1 && i + 1 < raw.length) {
    const next = raw.charCodeAt(i + 1)
    if (next === QUOTE || next === BACKSLASH || next === RBRACKET) {
      out += raw.slice(from, i)
      from = i + 1 // keep the escaped character, drop the backslash
      i = raw.indexOf('\\', i + 2)
    } else {
      i = raw.indexOf('\\', i + 1)
    }
  }
  return out + raw.slice(from)
}

// Names come from the network: `__proto__` must become a key, not replace the prototype.
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}

// ---- RFC 3164 and BSD-style variants ---------------------------------------------------------

function parse3164(b: Buffer, pos: number, end: number, pri: number, opts: SyslogParseOptions): SyslogEvent {
  let time = parseBsdOrRfc3339(b, pos, end, opts.receivedAt)
  if (time !== time) {
    // Cisco IOS: a sequence number "123: " and a clock marker ("*" unsynchronised, "." unsure).
    let p = pos
    while (p < end && isDigit(b[p]!)) p++
    if (p > pos && p + 1 < end && b[p] === COLON && b[p + 1] === SP) p += 2
    else p = pos
    if (p < end && (b[p] === STAR || b[p] === DOT)) p++
    if (p !== pos) time = parseBsdOrRfc3339(b, p, end, opts.receivedAt)
  }
  let host: string | null = null
  tagApp = null
  tagProcid = null
  let msgStart: number
  if (time === time) {
    let p = timeEnd
    while (p < end && b[p] === SP) p++
    const e = spaceOrEnd(b, p, end)
    if (e - p === 1 && b[p] === DASH) {
      msgStart = parseTag(b, skipSpaces(b, e, end), end) // HOSTNAME `-` (rsyslog passes it on)
    } else if (isTagToken(b, p, e)) {
      msgStart = parseTag(b, p, end) // no HOSTNAME: the token after the time is the tag
    } else if (isHostToken(b, p, e)) {
      host = token(b, p, e)
      msgStart = parseTag(b, skipSpaces(b, e, end), end)
    } else {
      msgStart = p // neither a host nor a tag: all of it is the message
    }
  } else {
    // No timestamp (e.g. `<13>app: hello`, or Fortinet's `<189>date=… time=…`): RFC 3164 §4.3.3
    // takes all of it as the message; only a token that is plainly a tag is read as one.
    time = opts.receivedAt
    msgStart = isTagToken(b, pos, spaceOrEnd(b, pos, end)) ? parseTag(b, pos, end) : pos
  }
  return {
    timestamp: isoTime(time),
    host: host ?? opts.remoteAddress ?? null,
    app: tagApp,
    procid: tagProcid,
    msgid: null,
    facility: facilityNames[pri >> 3]!,
    severity: severityNames[pri & 7]!,
    structuredData: null,
    message: messageText(b, msgStart, end),
  }
}

// What parseTag found: module state instead of a result object, to allocate nothing.
let tagApp: string | null = null
let tagProcid: string | null = null

// Reads `app[pid]:`, `app:`, `app[pid]` or a bare `app` at `pos`, then the optional `:` and one SP.
// Returns where the message starts: after the tag, or `pos` when there is no readable tag.
function parseTag(b: Buffer, pos: number, end: number): number {
  let i = pos
  while (i < end) {
    const c = b[i]!
    if (c === SP || c === COLON || c === LBRACKET) break
    if (tagByte[c] === 0) return pos // `{"a":1}`, `key=value`: not a tag but the message
    i++
  }
  if (i === pos) return pos
  const appEnd = i
  let procid: string | null = null
  if (i < end && b[i] === LBRACKET) {
    const close = b.indexOf(RBRACKET, i + 1)
    if (close === -1 || close >= end) return pos
    const after = close + 1
    if (after < end && b[after] !== COLON && b[after] !== SP) return pos
    // `app[]` names no process: null, as a missing PID is, never an empty string.
    procid = close === i + 1 ? null : token(b, i + 1, close)
    i = after
  }
  if (i < end && b[i] === COLON) i++
  if (i < end && b[i] === SP) i++
  tagApp = token(b, pos, appEnd)
  tagProcid = procid
  return i
}

// The token [s, e) after a BSD time is a tag, not a host: `app:`, `app[1]`, `%LINK-3-UPDOWN:`.
function isTagToken(b: Buffer, s: number, e: number): boolean {
  if (e === s) return false
  if (b[s] === PERCENT) return true
  for (let i = s; i < e; i++) if (b[i] === LBRACKET) return true
  return b[e - 1] === COLON && !isIpv6Like(b, s, e)
}

// `fe80::` ends in a colon but is an address: only hex digits, dots and at least two colons.
function isIpv6Like(b: Buffer, s: number, e: number): boolean {
  let colons = 0
  for (let i = s; i < e; i++) {
    const c = b[i]!
    if (c === COLON) colons++
    else if (!isDigit(c) && !((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) && c !== DOT) return false
  }
  return colons >= 2
}

// Host names, IPv4 and IPv6 addresses (with a zone), `undefined`, and UTF-8 names.
function isHostToken(b: Buffer, s: number, e: number): boolean {
  if (e === s) return false
  for (let i = s; i < e; i++) if (hostByte[b[i]!] === 0) return false
  return true
}

// ---- time ------------------------------------------------------------------------------------

const minuteMs = 60_000
const dayMs = 86_400_000

// Where a timestamp ended: module state instead of a result object.
let timeEnd = 0

// A BSD or RFC 3339 time at `pos`, in ms since the epoch, or NaN. Sets timeEnd.
function parseBsdOrRfc3339(b: Buffer, pos: number, end: number, receivedAt: number): number {
  if (pos + 4 < end && isDigit(b[pos]!) && b[pos + 4] === DASH) {
    const e = spaceOrEnd(b, pos, end)
    timeEnd = e
    return parseRfc3339(b, pos, e)
  }
  return parseBsdTime(b, pos, end, receivedAt)
}

// RFC 3339 in [s, e): YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm). A missing offset is read as UTC.
function parseRfc3339(b: Buffer, s: number, e: number): number {
  if (e - s < 19) return NaN
  const year = num4(b, s)
  const month = num2(b, s + 5)
  const day = num2(b, s + 8)
  const hour = num2(b, s + 11)
  const minute = num2(b, s + 14)
  const second = num2(b, s + 17)
  if (b[s + 4] !== DASH || b[s + 7] !== DASH || b[s + 13] !== COLON || b[s + 16] !== COLON) return NaN
  const t = b[s + 10]! | 0x20
  if (t !== 0x74 && t !== SP) return NaN // T, t (or a space, RFC 3339 §5.6 note)
  let p = s + 19
  let ms = 0
  if (p < e && b[p] === DOT) {
    p++
    const fracStart = p
    while (p < e && isDigit(b[p]!)) {
      if (p - fracStart < 3) ms = ms * 10 + (b[p]! - DIGIT_0)
      p++
    }
    if (p === fracStart) return NaN
    for (let n = p - fracStart; n < 3; n++) ms *= 10 // cut, not rounded
  }
  let offsetMinutes = 0
  if (p < e) {
    const c = b[p]!
    if ((c | 0x20) === 0x7a) {
      p++ // Z
    } else if (c === PLUS || c === DASH) {
      const oh = num2(b, p + 1)
      let om: number
      if (p + 6 <= e && b[p + 3] === COLON) {
        om = num2(b, p + 4)
        p += 6
      } else {
        om = num2(b, p + 3) // ±hhmm, as some senders write it
        p += 5
      }
      if (oh < 0 || om < 0 || oh > 23 || om > 59 || p > e) return NaN
      offsetMinutes = c === PLUS ? oh * 60 + om : -(oh * 60 + om)
    }
  }
  if (p !== e) return NaN
  const t0 = utcTime(year, month, day, hour, minute, second, ms)
  return t0 - offsetMinutes * minuteMs
}

const monthByName = new Map<number, number>()
for (const [i, name] of ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].entries()) {
  monthByName.set((name.charCodeAt(0) << 16) | (name.charCodeAt(1) << 8) | name.charCodeAt(2), i + 1)
}

// `Mmm dd hh:mm:ss` at `pos`: day space-padded or not; then optionally `.frac`, ` UTC`/` GMT` and
// `:` (Cisco); `Mmm dd yyyy hh:mm:ss` (Cisco ASA) carries its year. Sets timeEnd.
function parseBsdTime(b: Buffer, pos: number, end: number, receivedAt: number): number {
  if (end - pos < 14) return NaN
  const month = monthByName.get(((b[pos]! | 0x20) << 16) | ((b[pos + 1]! | 0x20) << 8) | (b[pos + 2]! | 0x20))
  if (month === undefined || b[pos + 3] !== SP) return NaN
  let p = pos + 4
  if (b[p] === SP) p++ // "Nov  5"
  if (p >= end || !isDigit(b[p]!)) return NaN
  let day = b[p]! - DIGIT_0
  p++
  if (p < end && isDigit(b[p]!)) {
    day = day * 10 + (b[p]! - DIGIT_0)
    p++
  }
  if (p >= end || b[p] !== SP) return NaN
  p++
  let year = -1
  if (p + 5 <= end && b[p + 4] === SP) {
    year = num4(b, p)
    if (year < 0) return NaN
    p += 5
  }
  if (p + 8 > end || b[p + 2] !== COLON || b[p + 5] !== COLON) return NaN
  const hour = num2(b, p)
  const minute = num2(b, p + 3)
  const second = num2(b, p + 6)
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return NaN
  p += 8
  let ms = 0
  if (p + 1 < end && b[p] === DOT && isDigit(b[p + 1]!)) {
    p++
    const fracStart = p
    while (p < end && isDigit(b[p]!)) {
      if (p - fracStart < 3) ms = ms * 10 + (b[p]! - DIGIT_0)
      p++
    }
    for (let n = p - fracStart; n < 3; n++) ms *= 10
  }
  if (p + 4 <= end && b[p] === SP && isUtcName(b, p + 1) && (p + 4 === end || b[p + 4] === SP || b[p + 4] === COLON)) p += 4
  if (p < end && b[p] === COLON) p++ // Cisco ends the time with ":"
  if (p < end && b[p] !== SP) return NaN
  timeEnd = p
  if (year >= 0) return day <= daysInMonth(year, month) ? utcTime(year, month, day, hour, minute, second, ms) : NaN
  return nearestPastYear(month, day, hour, minute, second, ms, receivedAt)
}

function isUtcName(b: Buffer, p: number): boolean {
  const c0 = b[p]!
  const c1 = b[p + 1]!
  const c2 = b[p + 2]!
  return (c0 === 0x55 && c1 === 0x54 && c2 === 0x43) || (c0 === 0x47 && c1 === 0x4d && c2 === 0x54) // UTC, GMT
}

// A BSD time has no year: take the latest year that puts it no more than a day after receivedAt
// (a day of slack for clock skew and zones). Feb 29 falls back to the latest leap year.
function nearestPastYear(month: number, day: number, hour: number, minute: number, second: number, ms: number, receivedAt: number): number {
  const limit = receivedAt + dayMs
  let year = utcYear(receivedAt) + 1
  for (let k = 0; k < 10; k++, year--) {
    if (day > daysInMonth(year, month)) continue
    const t = utcTime(year, month, day, hour, minute, second, ms)
    if (t <= limit) return t
  }
  return NaN // Feb 30 and the like
}

// The UTC year of `t`, cached for the year last asked about (receivedAt rarely changes year).
let cachedYear = 0
let cachedYearStart = 0
let cachedYearEnd = -1
function utcYear(t: number): number {
  if (t >= cachedYearStart && t < cachedYearEnd) return cachedYear
  const year = new Date(t).getUTCFullYear()
  if (!Number.isFinite(year)) return 1970
  cachedYear = year
  cachedYearStart = Date.UTC(year, 0, 1)
  cachedYearEnd = Date.UTC(year + 1, 0, 1)
  return year
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

// ms since the epoch for valid fields, else NaN. A leap second (:60) becomes the next second.
// Integer arithmetic instead of Date.UTC, which was 5% of parse time (and maps years 0–99 to 19xx).
function utcTime(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return NaN
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return NaN
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant, "chrono-Compatible
// Low-Level Date Algorithms": eras of 400 years, years starting in March).
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

// The `YYYY-MM-DDT` of a day since 1970-01-01 (0000–9999 only).
function datePrefix(days: number): string {
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const mp = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  return `${String(year).padStart(4, '0')}-${twoDigits[month]!}-${twoDigits[day]!}T`
}

// ISO 8601 for ms since the epoch. Messages arrive roughly in time order, so the text up to the
// second is cached and only the milliseconds are appended; Date#toISOString per message was the
// largest cost after decoding text in benchmarks/syslog-parse.bench.ts.
const twoDigits: string[] = []
for (let n = 0; n < 100; n++) twoDigits.push(String(n).padStart(2, '0'))
const msSuffix: string[] = []
for (let ms = 0; ms < 1000; ms++) msSuffix.push(`.${String(ms).padStart(3, '0')}Z`)
const isoMinMs = -62_167_219_200_000 // 0000-01-01T00:00:00Z
const isoMaxMs = 253_402_300_800_000 // 10000-01-01T00:00:00Z
let isoSecond = NaN
let isoPrefix = ''
let isoDay = NaN
let isoDate = ''
function isoTime(t: number): string {
  t = Math.floor(t) // receivedAt may carry a fraction (performance.timeOrigin + now())
  const second = Math.floor(t / 1000)
  if (second !== isoSecond) {
    if (t < isoMinMs || t >= isoMaxMs) return new Date(t).toISOString() // ±YYYYYY years
    const day = Math.floor(second / 86_400)
    if (day !== isoDay) {
      isoDay = day
      isoDate = datePrefix(day)
    }
    let rest = second - day * 86_400
    const hour = Math.floor(rest / 3600)
    rest -= hour * 3600
    const minute = Math.floor(rest / 60)
    isoSecond = second
    isoPrefix = `${isoDate}${twoDigits[hour]!}:${twoDigits[minute]!}:${twoDigits[rest - minute * 60]!}`
  }
  return isoPrefix + msSuffix[t - second * 1000]!
}

// ---- bytes -----------------------------------------------------------------------------------

// Buffer#toString(encoding, start, end) checks its arguments and looks the encoding up on every
// call before it reaches the native slice; calling that directly took the wrapper's ~18% of parse
// time out of the CPU profile (benchmarks/syslog-parse.bench.ts). `utf8Slice` has been on
// Buffer.prototype since Node 0.x; it replaces invalid UTF-8 with U+FFFD like toString does.
interface Utf8Sliceable {
  utf8Slice(start: number, end: number): string
}
function utf8(b: Buffer, s: number, e: number): string {
  return (b as unknown as Utf8Sliceable).utf8Slice(s, e)
}

// Header tokens and SD names and values are short and repeat from message to message (`vm`,
// `web`, `timeQuality`, `tzKnown`, `1`), and each native slice call costs more than decoding a few
// ASCII bytes in JS. So short ASCII tokens are looked up in a small direct-mapped cache by a hash
// of their bytes, and decoded in JS on a miss: RFC 5424 parsing went from ~0.98 M to ~1.33 M
// lines per CPU-second in benchmarks/syslog-parse.bench.ts.
// Longer or non-ASCII text goes to utf8Slice.
const tokenCacheBytesMax = 32
const tokenCacheSize = 4096 // a power of two
const tokenCache: string[] = new Array<string>(tokenCacheSize).fill('')
function token(b: Buffer, s: number, e: number): string {
  const len = e - s
  if (len > tokenCacheBytesMax) return utf8(b, s, e)
  let hash = len
  for (let i = s; i < e; i++) {
    const c = b[i]!
    if (c >= 0x80) return utf8(b, s, e)
    hash = Math.imul(hash ^ c, 0x01000193) // FNV-1a
  }
  const slot = (hash ^ (hash >>> 15)) & (tokenCacheSize - 1)
  const cached = tokenCache[slot]!
  if (cached.length === len) {
    let i = 0
    while (i < len && cached.charCodeAt(i) === b[s + i]) i++
    if (i === len) return cached
  }
  let text = ''
  for (let i = s; i < e; i++) text += String.fromCharCode(b[i]!)
  tokenCache[slot] = text
  return text
}

function isDigit(c: number): boolean {
  return c >= DIGIT_0 && c <= DIGIT_9
}

function num2(b: Buffer, p: number): number {
  const d0 = b[p]! - DIGIT_0
  const d1 = b[p + 1]! - DIGIT_0
  return d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 ? d0 * 10 + d1 : -1
}

function num4(b: Buffer, p: number): number {
  const hi = num2(b, p)
  const lo = num2(b, p + 2)
  return hi < 0 || lo < 0 ? -1 : hi * 100 + lo
}

function spaceOrEnd(b: Buffer, pos: number, end: number): number {
  while (pos < end && b[pos] !== SP) pos++
  return pos
}

function skipSpaces(b: Buffer, pos: number, end: number): number {
  while (pos < end && b[pos] === SP) pos++
  return pos
}

// A 5424 header field: `-` (and an empty field, from a doubled space) is null.
function nilOrText(b: Buffer, s: number, e: number): string | null {
  if (e === s || (e - s === 1 && b[s] === DASH)) return null
  return token(b, s, e)
}

// MSG from `s`: a leading UTF-8 BOM is dropped; invalid UTF-8 becomes U+FFFD.
function messageText(b: Buffer, s: number, end: number): string {
  if (s + 2 < end && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3
  return s < end ? utf8(b, s, end) : ''
}

// A frame without PRI is accepted only as text: no control bytes but TAB, and valid UTF-8.
function isText(b: Buffer, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = b[i]!
    if ((c < SP && c !== TAB) || c === DEL) return false
  }
  return isUtf8(b.subarray(0, end))
}

// The start of a rejected frame for its error message, printable.
function preview(b: Buffer, end: number): string {
  return JSON.stringify(b.toString('latin1', 0, Math.min(end, 32))) + (end > 32 ? '…' : '')
}

// Bytes allowed in a BSD tag and in a host name (1) or not (0).
const tagByte = new Uint8Array(256)
const hostByte = new Uint8Array(256)
for (let c = 0; c < 256; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  // Tags: `postfix/smtpd`, `(sd-pam)`, `%LINK-3-UPDOWN`, MikroTik's `system,info`, UTF-8 names.
  tagByte[c] = alnum || c >= 0x80 || '-_./@%+#~()!*&$?,'.includes(String.fromCharCode(c)) ? 1 : 0
  // Hosts: names, IPv4, IPv6 with a zone (`fe80::1%eth0`), UTF-8 names.
  hostByte[c] = alnum || c >= 0x80 || '-_.:%'.includes(String.fromCharCode(c)) ? 1 : 0
}
