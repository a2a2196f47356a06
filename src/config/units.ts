// Human units in the configuration file. Each parser returns a number, or undefined when the
// text is not in its syntax, so the validator can word the error with the YAML position.
// Sizes use binary multiples (1kb = 1024 bytes) because segment and buffer sizes are compared
// with page and block sizes, which are powers of two.

const sizeFactors: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
}

const durationFactors: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

const rateDivisors: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600 }

const unitPattern = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i

function scaled(value: unknown, factors: Readonly<Record<string, number>>, plainFactor: number): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value * plainFactor : undefined
  }
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return scaled(Number(text), factors, plainFactor)
  const match = unitPattern.exec(text)
  if (!match) return undefined
  const factor = factors[(match[2] ?? '').toLowerCase()]
  if (factor === undefined) return undefined
  // Fractions are allowed (1.5gb) but the result is whole bytes or milliseconds.
  const result = Math.round(Number(match[1]) * factor)
  return Number.isSafeInteger(result) ? result : undefined
}

/** `64mb`, `1gb`, `512kb`, `100b`; a plain integer is bytes. */
export function parseSize(value: unknown): number | undefined {
  return scaled(value, sizeFactors, 1)
}

/** `5ms`, `30s`, `1m`, `2h`, `7d`; a plain integer is milliseconds. */
export function parseDuration(value: unknown): number | undefined {
  return scaled(value, durationFactors, 1)
}

/** Events per second from `5000/s`, `100/m`, `10/h`; a plain number is per second. */
export function parseEventRate(value: unknown): number | undefined {
  return rate(value, (amount) => (/^\d+(?:\.\d+)?$/.test(amount) ? Number(amount) : undefined))
}

/** Bytes per second from `50mb/s`, `1gb/m`; a plain number is bytes per second. */
export function parseByteRate(value: unknown): number | undefined {
  return rate(value, (amount) => parseSize(amount))
}

function rate(value: unknown, amountOf: (amount: string) => number | undefined): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const slash = value.lastIndexOf('/')
  const amountText = (slash < 0 ? value : value.slice(0, slash)).trim()
  const per = slash < 0 ? 's' : value.slice(slash + 1).trim().toLowerCase()
  const divisor = rateDivisors[per === 'sec' ? 's' : per === 'min' ? 'm' : per]
  const amount = amountOf(amountText)
  if (divisor === undefined || amount === undefined || amount <= 0) return undefined
  return amount / divisor
}

/** The shortest exact unit spelling of a byte count, for docs and summaries. */
export function formatSize(bytes: number): string {
  for (const unit of ['tb', 'gb', 'mb', 'kb'] as const) {
    const factor = sizeFactors[unit] ?? 1
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`
  }
  return `${bytes}b`
}

/** The shortest exact unit spelling of a millisecond count, for docs and summaries. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const factor = durationFactors[unit] ?? 1
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`
  }
  return `${ms}ms`
}
