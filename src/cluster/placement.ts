// Where the controller puts a stream that has no home yet: on the live node with the fewest
// streams, then the fewest stored bytes, then the lowest id, so every controller given the same
// view places the same way. Placed streams never move here: a move is asked for (cluster move),
// and a dead node's streams wait for it. Followers (cluster.replication.factor) go to the nodes
// holding the fewest copies.

export interface NodeLoad {
  readonly id: string
  readonly storedBytes: number
}

/** Homes for `unplaced`, in name order, given the live nodes and the streams each already has. */
export function placeStreams(unplaced: readonly string[], nodes: readonly NodeLoad[], placed: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>()
  if (nodes.length === 0) return out
  const load = new Map<string, { streams: number; bytes: number }>(nodes.map((n) => [n.id, { streams: 0, bytes: n.storedBytes }]))
  for (const home of placed.values()) {
    const l = load.get(home)
    if (l !== undefined) l.streams++
  }
  for (const stream of [...unplaced].sort()) {
    let best: string | undefined
    for (const [id, l] of load) {
      const b = best === undefined ? undefined : load.get(best)!
      if (b === undefined || l.streams < b.streams || (l.streams === b.streams && (l.bytes < b.bytes || (l.bytes === b.bytes && id < best!)))) best = id
    }
    out.set(stream, best!)
    load.get(best!)!.streams++
  }
  return out
}

/**
 * Followers for a stream led by `leader`: up to `factor − 1` other live nodes, those holding the
 * fewest copies first, then the lowest id. `copies` counts the copies each node holds already,
 * and is updated with the choice, so a batch of streams spreads.
 */
export function chooseFollowers(leader: string, current: readonly string[], nodes: readonly string[], factor: number, copies: Map<string, number>): string[] {
  const out = current.filter((n) => n !== leader)
  const free = nodes.filter((n) => n !== leader && !out.includes(n)).sort((a, b) => (copies.get(a) ?? 0) - (copies.get(b) ?? 0) || (a < b ? -1 : 1))
  while (out.length < factor - 1 && free.length > 0) {
    const n = free.shift()!
    out.push(n)
    copies.set(n, (copies.get(n) ?? 0) + 1)
  }
  return out
}
