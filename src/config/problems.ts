// Every configuration problem carries the YAML path and the line and column of the node it is
// about, so an operator can jump straight to it. Problems are collected, never thrown one at a
// time: a start that fails should list everything to fix at once.

export interface Pos {
  readonly line: number
  readonly col: number
}

const pathCharsMax = 600
const messageCharsMax = 1500

/** The start and the end of a long text, with "…" between. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text
  const half = Math.floor((max - 1) / 2)
  return `${text.slice(0, half)}…${text.slice(text.length - half)}`
}

export class Problems {
  readonly #list: { readonly text: string; readonly line: number; readonly col: number }[] = []

  add(path: string, pos: Pos | undefined, message: string): void {
    const where = pos ? `line ${pos.line}, col ${pos.col}` : ''
    // A key or a value may be megabytes long; the line and column point at it anyway.
    const shortPath = cut(path, pathCharsMax)
    const head = shortPath === '' ? where : where === '' ? shortPath : `${shortPath} (${where})`
    this.#list.push({ text: head === '' ? cut(message, messageCharsMax) : `${head}: ${cut(message, messageCharsMax)}`, line: pos?.line ?? 0, col: pos?.col ?? 0 })
  }

  get size(): number {
    return this.#list.length
  }

  /** In file order, so an operator can fix them top to bottom. */
  toArray(): string[] {
    return [...this.#list].sort((a, b) => a.line - b.line || a.col - b.col).map((p) => p.text)
  }
}

/** Joins a path and a key; list items use `[i]`. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return path === '' ? key : `${path}.${key}`
}

/** Optimal string alignment distance: a transposed pair counts as one edit, as typos do. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols).fill(0)
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i * cols + j] = best
    }
  }
  return at(rows - 1, cols - 1)
}

/** The closest candidate within a typo's reach, for "did you mean" hints. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  // Short words get one edit, longer ones a third of their length, so `port` does not suggest
  // `host` but `maxDelivery` suggests `maxDeliveries`. A suggestion must also keep most of its
  // own letters, so a missing `app-logs-dlq` does not suggest `app-logs`.
  const reach = Math.max(1, Math.floor(word.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    // The distance is at least the difference in length: a long key is never compared in full.
    if (Math.abs(candidate.length - word.length) > reach) continue
    const distance = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, candidate)
    if (distance <= reach && distance * 2 < candidate.length && distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const hint = closest(word, candidates)
  return hint === undefined ? '' : `; did you mean \`${hint}\`?`
}
