// Where the controller puts a stream that has no home yet: on the live node with the fewest
// streams, then the fewest stored bytes, then the lowest id, so every controller given the same
// view places the same way. Placed streams never move here: a move is asked for (cluster move),
// and a dead node's streams wait for it, since in this release only it holds their data.

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
