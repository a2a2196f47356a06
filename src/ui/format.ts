// Numbers as a person reads them: grouped digits, binary units, durations in the largest unit.

const grouped = new Intl.NumberFormat('en-US')

export const num = (n: number): string => grouped.format(n)

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`
  const s = Math.floor(seconds)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d} d ${h} h`
  if (h > 0) return `${h} h ${m} min`
  return `${m} min ${s % 60} s`
}

export const time = (iso: string | null): string => (iso === null ? '—' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2)
}
