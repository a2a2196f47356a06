import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'

export interface Answer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
}

export interface WireError {
  error: { code: string; message: string; details?: Record<string, unknown> }
}

/** host and port of a server URL such as http://127.0.0.1:1234 */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

/** A plain TCP connection to the server, closed when the test ends; `localAddress` picks the client address. */
export async function openSocket(url: string, localAddress?: string): Promise<Socket> {
  const { host, port } = hostPort(url)
  const socket = connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) })
  onTestFinished(() => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  socket.on('error', () => undefined)
  return socket
}

/** The request head of a POST with a fixed length, as a client writes it. */
export function postHead(path: string, length: number, type = 'application/json'): string {
  return `POST ${path} HTTP/1.1\r\nHost: sluice\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n`
}

/** Everything the server sends on a socket until it closes it. */
export function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = ''
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')))
    socket.once('close', () => resolve(data))
  })
}

/** One request through node:http, from `localAddress` when given, without keep-alive. */
export function httpCall(
  url: string,
  opts: { method?: string; path: string; headers?: Record<string, string | number>; body?: string | Buffer; localAddress?: string },
): Promise<Answer> {
  const { host, port } = hostPort(url)
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every 20 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await sleep(20)
  }
}

export async function readyzStatus(url: string): Promise<number> {
  const res = await fetch(`${url}/readyz`)
  await res.arrayBuffer()
  return res.status
}
