// Checks on listener entries (a listener key may hold a list of them): their TLS files, and what
// the entries of one key must agree on.
//
// The TLS files are checked when the configuration is validated, so a missing file, an
// unreadable key or a key that belongs to another certificate stops the start with the key's
// line; they are read again by the same code on every SIGHUP, where a bad file keeps the
// certificate already in use. Only node:crypto and node:fs here: the doors build the TLS
// contexts (src/ingest/tcp/tls.ts).

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { childPath, type Pos, type Problems } from './problems.js'
import type { Validated } from './validate.js'

/** The PEM text of an entry's files, checked. */
export interface TlsMaterial {
  readonly cert: Buffer
  readonly key: Buffer
  /** undefined: no `ca` (clientAuth none). */
  readonly ca: Buffer | undefined
  /** The server certificate's subject and end of validity, for the log. */
  readonly subject: string
  readonly validTo: string
}

export type TlsFile = 'cert' | 'key' | 'ca'

export interface TlsFileProblem {
  readonly file: TlsFile
  readonly problem: string
}

interface TlsPaths {
  readonly cert: string
  readonly key: string
  readonly ca: string | null
}

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

function read(path: string): Buffer | string {
  try {
    return readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `${path} does not exist`
    if (code === 'EACCES' || code === 'EPERM') return `${path} cannot be read: permission denied (the server's user needs read access)`
    if (code === 'EISDIR') return `${path} is a directory, not a PEM file`
    return `${path} cannot be read: ${(err as Error).message}`
  }
}

/** Reads and checks the files of one entry: the material, or the first problem found. */
export function readTlsMaterial(paths: TlsPaths): TlsMaterial | TlsFileProblem {
  const cert = read(paths.cert)
  if (typeof cert === 'string') return { file: 'cert', problem: cert }
  const first = cert.toString('latin1').match(certificateBlock)?.[0]
  let x509: X509Certificate
  try {
    if (first === undefined) throw new Error('no "BEGIN CERTIFICATE" block')
    x509 = new X509Certificate(first)
  } catch (err) {
    return { file: 'cert', problem: `${paths.cert} is not a PEM certificate (${(err as Error).message})` }
  }
  const key = read(paths.key)
  if (typeof key === 'string') return { file: 'key', problem: key }
  // OpenSSL's own message for an encrypted key ("interrupted or cancelled") says nothing useful.
  const keyText = key.toString('latin1')
  if (keyText.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || keyText.includes('Proc-Type: 4,ENCRYPTED')) {
    return { file: 'key', problem: `${paths.key} is not an unencrypted PEM private key: it is encrypted; decrypt it (openssl pkey -in key.pem -out plain.pem)` }
  }
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey({ key, format: 'pem' })
  } catch (err) {
    return { file: 'key', problem: `${paths.key} is not an unencrypted PEM private key (${(err as Error).message})` }
  }
  if (!x509.checkPrivateKey(keyObject)) return { file: 'key', problem: `${paths.key} is not the private key of the certificate in ${paths.cert}` }
  let ca: Buffer | undefined
  if (paths.ca !== null) {
    const caText = read(paths.ca)
    if (typeof caText === 'string') return { file: 'ca', problem: caText }
    const blocks = caText.toString('latin1').match(certificateBlock) ?? []
    if (blocks.length === 0) return { file: 'ca', problem: `${paths.ca} holds no PEM certificate` }
    for (const [i, block] of blocks.entries()) {
      try {
        new X509Certificate(block)
      } catch (err) {
        return { file: 'ca', problem: `certificate ${i + 1} in ${paths.ca} does not parse (${(err as Error).message})` }
      }
    }
    ca = caText
  }
  return { cert, key, ca, subject: x509.subject.replaceAll('\n', ', '), validTo: x509.validTo }
}

export function isTlsProblem(m: TlsMaterial | TlsFileProblem): m is TlsFileProblem {
  return 'problem' in m
}

const listenerKeys = ['http', 'ndjson', 'amqp', 'syslog', 'gelf', 'forward'] as const

interface RawTls {
  readonly cert?: unknown
  readonly key?: unknown
  readonly ca?: unknown
  readonly clientAuth?: unknown
}

/** Every AMQP entry serves the one virtual host, whose per-connection bounds these are. */
const amqpSharedKeys = ['maxQueuesPerConnection', 'maxConsumersPerChannel'] as const

/**
 * Each listener entry's `tls` (server.otlp.http and server.otlp.grpc included): a client certificate needs a CA to be checked against (and a CA
 * is only for that), and the files must be there, readable, PEM, and the key the certificate's.
 * AMQP entries must agree on the bounds of their shared virtual host. Invalid values are
 * undefined here and already reported.
 */
export function checkListeners(v: Validated, problems: Problems): void {
  const at = (path: string): Pos | undefined => v.positions.get(path)
  const server = v.raw.server as Record<string, unknown> | null | undefined
  if (server === null || typeof server !== 'object') return
  for (const name of listenerKeys) {
    const entries = server[name]
    if (!Array.isArray(entries)) continue
    // A single mapping is reported as `server.amqp`, a list's items as `server.amqp[1]`.
    const listed = v.positions.has(childPath(`server.${name}`, 0))
    const entryPath = (i: number): string => (listed ? childPath(`server.${name}`, i) : `server.${name}`)
    if (name === 'amqp') {
      const first = entries[0] as Record<string, unknown> | null | undefined
      entries.forEach((entry: unknown, i) => {
        if (i === 0 || entry === null || first === null || first === undefined) return
        for (const key of amqpSharedKeys) {
          const value = (entry as Record<string, unknown>)[key]
          if (value === undefined || first[key] === undefined || value === first[key]) continue
          const p = childPath(entryPath(i), key)
          problems.add(p, at(p) ?? at(entryPath(i)), `every AMQP entry serves one virtual host, so ${key} must be the same in each: ${String(first[key])} in ${entryPath(0)}`)
        }
      })
    }
    entries.forEach((entry: unknown, i) => checkTls(entry, entryPath(i), at, problems))
  }
  // OTLP's own listeners are single mappings under server.otlp.
  const otlp = server.otlp as Record<string, unknown> | null | undefined
  if (otlp !== null && typeof otlp === 'object') for (const name of ['http', 'grpc']) checkTls(otlp[name], `server.otlp.${name}`, at, problems)
}

function checkTls(entry: unknown, entryPath: string, at: (path: string) => Pos | undefined, problems: Problems): void {
  const tls = (entry as { tls?: unknown } | null | undefined)?.tls as RawTls | null | undefined
  if (tls === null || tls === undefined || typeof tls !== 'object') return
  const path = childPath(entryPath, 'tls')
  const { cert, key, ca, clientAuth } = tls
  if ((clientAuth === 'optional' || clientAuth === 'required') && ca === null) {
    const p = childPath(path, 'clientAuth')
    problems.add(p, at(p), `clientAuth: ${clientAuth} needs \`ca\`, the CA certificates that client certificates must chain to`)
  }
  if (clientAuth === 'none' && typeof ca === 'string') {
    const p = childPath(path, 'ca')
    problems.add(p, at(p), '`ca` only checks client certificates, and clientAuth is none; set clientAuth: optional or required, or remove ca')
  }
  if (typeof cert !== 'string' || typeof key !== 'string' || (ca !== null && typeof ca !== 'string')) return
  const material = readTlsMaterial({ cert, key, ca })
  if (isTlsProblem(material)) {
    const p = childPath(path, material.file)
    problems.add(p, at(p), material.problem)
  }
}
