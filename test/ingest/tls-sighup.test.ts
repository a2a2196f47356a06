// SIGHUP to the real `sluice serve` process (the built CLI): the certificate on disk replaces the
// one in use for new connections, an open connection carries on, and the process keeps running.

import { X509Certificate } from 'node:crypto'
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startChildServer } from '../helpers/child-server.js'
import { makePki, tlsYaml } from '../helpers/pki.js'
import { waitFor } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

/** An HTTPS keep-alive connection that sends one GET at a time and reads its answer. */
async function keepAlive(port: number, ca: Buffer): Promise<{ socket: TLSSocket; get(path: string): Promise<string> }> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s))
    s.once('error', reject)
  })
  onTestFinished(() => void socket.destroy())
  const get = (path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      let got = ''
      const onData = (chunk: Buffer): void => {
        got += chunk.toString()
        const head = got.indexOf('\r\n\r\n')
        const length = /content-length: (\d+)/i.exec(got)?.[1]
        if (head >= 0 && length !== undefined && got.length >= head + 4 + Number(length)) {
          socket.off('data', onData)
          resolve(got)
        }
      }
      socket.on('data', onData)
      socket.once('error', reject)
      socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\n`)
    })
  return { socket, get }
}

describe('SIGHUP', () => {
  it('reloads the certificate of the running server without dropping an open connection', async () => {
    const dir = await tempDir()
    const pki = await makePki(dir)
    const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') }
    await copyFile(pki.server.cert, live.cert)
    await copyFile(pki.server.key, live.key)
    const child = await startChildServer(
      dir,
      `server:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  http: { port: 0, tls: ${tlsYaml(live)} }
  ndjson: { enabled: false }
  amqp: { enabled: false }
  syslog: { enabled: false }
`,
    )
    onTestFinished(async () => {
      if (child.proc.exitCode === null) await child.kill('SIGKILL')
    })
    expect(child.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const port = Number(new URL(child.url).port)
    const ca = await readFile(pki.ca)
    const fingerprint = async (): Promise<string> => {
      const { socket } = await keepAlive(port, ca)
      const f = socket.getPeerX509Certificate()!.fingerprint256
      socket.destroy()
      return f
    }
    const old = await keepAlive(port, ca)
    expect(await old.get('/healthz')).toMatch(/^HTTP\/1\.1 200/)
    const first = old.socket.getPeerX509Certificate()!.fingerprint256

    const renewed = await pki.issue('renewed', '/O=Renewed/CN=localhost', 'server')
    await copyFile(renewed.cert, live.cert)
    await copyFile(renewed.key, live.key)
    child.proc.kill('SIGHUP')
    const expected = new X509Certificate(await readFile(renewed.cert)).fingerprint256
    expect(expected).not.toBe(first)
    await waitFor('a new connection to see the new certificate', async () => ((await fingerprint()) === expected ? true : undefined), 10_000)

    // Still running, and the connection opened before the reload is still served.
    expect(child.proc.exitCode).toBeNull()
    expect(await old.get('/healthz')).toMatch(/^HTTP\/1\.1 200/)
    old.socket.destroy()
    expect(await child.kill('SIGTERM')).toBe(0)
  })
})
