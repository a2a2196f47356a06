import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { requireProgram } from './programs.js'

const run = promisify(execFile)

/** A certificate and its key, as PEM files. */
export interface Pair {
  readonly cert: string
  readonly key: string
}

/**
 * A test CA and what it signs, made at test time with the openssl CLI (keys are never checked
 * in). EC P-256 keys: quick to make, and every client under test speaks them.
 */
export interface Pki {
  readonly dir: string
  /** The CA certificate (the `ca` a client trusts, and a listener checks client certificates by). */
  readonly ca: string
  /** For 127.0.0.1 and localhost. */
  readonly server: Pair
  /** Subject O=Acme, CN=shipper. */
  readonly client: Pair
  /** Self-signed, CN=rogue: chains to nothing the listener trusts. */
  readonly rogue: Pair
  /** Signs one more certificate with the CA, into `dir/<name>.pem` and `.key`. */
  issue(name: string, subject: string, usage: 'server' | 'client' | 'both'): Promise<Pair>
}

const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export async function makePki(dir: string): Promise<Pki> {
  const openssl = requireProgram('openssl', 'openssl')
  const ca = join(dir, 'ca.pem')
  const caKey = join(dir, 'ca.key')
  await run(openssl, ['req', '-x509', ...newKey, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=Sluice Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  const issue = async (name: string, subject: string, usage: 'server' | 'client' | 'both'): Promise<Pair> => {
    const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
    const csr = join(dir, `${name}.csr`)
    const ext = join(dir, `${name}.ext`)
    const san = 'subjectAltName=IP:127.0.0.1,DNS:localhost\n'
    await writeFile(ext, usage === 'server' ? `${san}extendedKeyUsage=serverAuth\n` : usage === 'both' ? `${san}extendedKeyUsage=serverAuth,clientAuth\n` : 'extendedKeyUsage=clientAuth\n')
    await run(openssl, ['req', ...newKey, '-keyout', pair.key, '-out', csr, '-subj', subject])
    await run(openssl, ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', ext, '-out', pair.cert])
    return pair
  }
  const server = await issue('server', '/CN=localhost', 'server')
  const client = await issue('client', '/O=Acme/CN=shipper', 'client')
  const rogue = { cert: join(dir, 'rogue.pem'), key: join(dir, 'rogue.key') }
  await run(openssl, ['req', '-x509', ...newKey, '-keyout', rogue.key, '-out', rogue.cert, '-days', '2', '-subj', '/CN=rogue'])
  return { dir, ca, server, client, rogue, issue }
}

/** A listener's `tls` as a YAML flow mapping. */
export function tlsYaml(pair: Pair, extra: { ca?: string; clientAuth?: 'none' | 'optional' | 'required'; minVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): string {
  const fields = [`cert: ${JSON.stringify(pair.cert)}`, `key: ${JSON.stringify(pair.key)}`]
  if (extra.ca !== undefined) fields.push(`ca: ${JSON.stringify(extra.ca)}`)
  if (extra.clientAuth !== undefined) fields.push(`clientAuth: ${extra.clientAuth}`)
  if (extra.minVersion !== undefined) fields.push(`minVersion: ${extra.minVersion}`)
  return `{ ${fields.join(', ')} }`
}
