import { createConnection, createServer, type Socket } from 'node:net'

/** Which way a cut stops bytes: toward the target (`in`), back from it (`out`), or both. */
export type CutDirection = 'in' | 'out' | 'both'

export interface TcpProxy {
  readonly port: number
  /**
   * A partition: nothing more is forwarded the way(s) cut, and while both ways are cut new
   * connections are accepted but never reach the target. Clients see silence (their deadlines
   * fire), not resets.
   */
  cut(direction?: CutDirection): void
  /** Ends the partition: the silent connections are closed, so clients reconnect through. */
  restore(): void
  /** Sends new connections to another port (a target restarted elsewhere); open ones are closed. */
  retarget(port: number): void
  close(): Promise<void>
}

/** A TCP proxy on 127.0.0.1 in front of 127.0.0.1:`target`, which a test can cut. */
export async function startTcpProxy(target: number): Promise<TcpProxy> {
  let toTarget = true
  let fromTarget = true
  const pairs = new Set<[Socket, Socket | undefined]>()
  const dropAll = (): void => {
    for (const [c, u] of [...pairs]) {
      c.destroy()
      u?.destroy()
    }
    pairs.clear()
  }
  const server = createServer((client) => {
    const pair: [Socket, Socket | undefined] = [client, undefined]
    pairs.add(pair)
    const drop = (): void => {
      pairs.delete(pair)
      client.destroy()
      pair[1]?.destroy()
    }
    client.on('error', drop)
    client.on('close', drop)
    if (!toTarget && !fromTarget) return // held open, never forwarded
    const upstream = createConnection({ host: '127.0.0.1', port: target })
    pair[1] = upstream
    upstream.on('error', drop)
    upstream.on('close', drop)
    client.on('data', (b) => {
      if (toTarget) upstream.write(b)
    })
    upstream.on('data', (b) => {
      if (fromTarget) client.write(b)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = server.address()
  const port = typeof a === 'object' && a !== null ? a.port : 0
  return {
    port,
    cut: (direction = 'both') => {
      if (direction !== 'out') toTarget = false
      if (direction !== 'in') fromTarget = false
    },
    restore: () => {
      toTarget = true
      fromTarget = true
      dropAll()
    },
    retarget: (next) => {
      target = next
      dropAll()
    },
    close: async () => {
      dropAll()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
