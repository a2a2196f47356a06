import { createConnection, createServer, type Socket } from 'node:net'

export interface TcpProxy {
  readonly port: number
  /**
   * A partition: nothing more is forwarded either way, and new connections are accepted but
   * never reach the target. Clients see silence (their deadlines fire), not resets.
   */
  cut(): void
  /** Ends the partition: the silent connections are closed, so clients reconnect through. */
  restore(): void
  close(): Promise<void>
}

/** A TCP proxy on 127.0.0.1 in front of 127.0.0.1:`target`, which a test can cut. */
export async function startTcpProxy(target: number): Promise<TcpProxy> {
  let cut = false
  const pairs = new Set<[Socket, Socket | undefined]>()
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
    if (cut) return // held open, never forwarded
    const upstream = createConnection({ host: '127.0.0.1', port: target })
    pair[1] = upstream
    upstream.on('error', drop)
    upstream.on('close', drop)
    client.on('data', (b) => {
      if (!cut) upstream.write(b)
    })
    upstream.on('data', (b) => {
      if (!cut) client.write(b)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = server.address()
  const port = typeof a === 'object' && a !== null ? a.port : 0
  return {
    port,
    cut: () => {
      cut = true
    },
    restore: () => {
      cut = false
      for (const [c, u] of [...pairs]) {
        c.destroy()
        u?.destroy()
      }
      pairs.clear()
    },
    close: async () => {
      for (const [c, u] of pairs) {
        c.destroy()
        u?.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
