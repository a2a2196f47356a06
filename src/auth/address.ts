// Client addresses as the doors see them (`socket.remoteAddress`), parsed by hand: the core opens
// no sockets and imports nothing of node:net.

const v4Mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (`::ffff:127.0.0.1`), which dual-stack sockets report. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false
  const v4 = v4Mapped.exec(address)?.[1] ?? address
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)) return true
  return expandIpv6(address)?.every((group, i) => group === (i === 7 ? 1 : 0)) ?? false
}

/**
 * The key under which failed logins are remembered: an IPv4 address whole, an IPv6 address by its
 * /64, since one host or one customer usually holds a whole /64 and could otherwise rotate through
 * it to escape the slowdown.
 */
export function throttleKey(address: string): string {
  const v4 = v4Mapped.exec(address)?.[1]
  if (v4 !== undefined) return v4
  const groups = expandIpv6(address)
  if (groups === undefined) return address
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one (a zone index is dropped). */
function expandIpv6(address: string): number[] | undefined {
  const text = address.split('%')[0] ?? ''
  if (!text.includes(':')) return undefined
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    const pieces = part.split(':')
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!
      // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
      if (i === pieces.length - 1 && piece.includes('.')) {
        const octets = piece.split('.').map(Number)
        if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined
        out.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!)
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined
        out.push(parseInt(piece, 16))
      }
    }
    return out
  }
  const head = parse(halves[0]!)
  const tail = halves.length === 2 ? parse(halves[1]!) : []
  if (head === undefined || tail === undefined) return undefined
  if (halves.length === 1) return head.length === 8 ? head : undefined
  const missing = 8 - head.length - tail.length
  if (missing < 1) return undefined
  return [...head, ...new Array<number>(missing).fill(0), ...tail]
}
