// TLS for the doors: the server options of a listener entry's `tls`, the client certificate a
// connection presented, and the reload of every door's certificate on SIGHUP.
//
// A reload swaps the server's secure context (tls.Server#setSecureContext): connections already
// open keep the session they negotiated, new ones get the new certificate. The files are checked
// first by the same code as at start (src/config/tls.ts), so a half-written or mismatched file
// keeps the context in use and says why.

import type { Socket } from 'node:net'
import { TLSSocket, type Server as TlsServer, type TlsOptions } from 'node:tls'
import { isTlsProblem, readTlsMaterial, type ListenerConfig, type TlsConfig, type TlsMaterial } from '../../config/index.js'
import type { Logger } from '../../logger.js'

/** The client certificate of a TLS connection, when the listener asks for one and it checked out. */
export interface PeerCertificate {
  /** The subject as RFC 4514 writes a distinguished name, most specific first: `CN=shipper,O=Acme`. */
  readonly subject: string
  /** The subject's CN, if it has one. */
  readonly commonName: string | undefined
  /** SHA-256 fingerprint, colon-separated hex as OpenSSL prints it. */
  readonly fingerprint256: string
  readonly serialNumber: string
  readonly validTo: string
}

/** What a door needs to serve TLS on one listener entry. */
export interface TlsSetup {
  readonly config: TlsConfig
  /** Says which listener a log line or an error is about, e.g. `amqp 127.0.0.1:5671`. */
  readonly label: string
  /** Where the entry's certificate is registered for SIGHUP; none in tests that build a door alone. */
  readonly reloader?: TlsReloader | undefined
}

/** The TLS of a listener entry, or undefined for plain TCP. */
export function tlsSetupFor(name: string, entry: ListenerConfig, reloader?: TlsReloader): TlsSetup | undefined {
  return entry.tls === null ? undefined : { config: entry.tls, label: `${name} ${entry.host}:${entry.port}`, reloader }
}

/** Node's server options for an entry, from its checked files. */
export function tlsServerOptions(config: TlsConfig, material: TlsMaterial): TlsOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca === undefined ? {} : { ca: material.ca }),
    minVersion: config.minVersion,
    requestCert: config.clientAuth !== 'none',
    // `optional` lets a client without a certificate through; one that sends a certificate that
    // does not chain to `ca` is refused by the door once the handshake is done (Node has no
    // "verify if presented" mode).
    rejectUnauthorized: config.clientAuth === 'required',
  }
}

/** Reads an entry's files at start; an error names the key and the file (its caller, the listener). */
export function loadTlsOptions(setup: TlsSetup): TlsOptions {
  const material = readTlsMaterial(setup.config)
  if (isTlsProblem(material)) throw new Error(`tls.${material.file}: ${material.problem}`)
  return tlsServerOptions(setup.config, material)
}

const peers = new WeakMap<Socket, PeerCertificate | null>()

/**
 * The verified client certificate of a connection (a TLS socket whose listener has clientAuth
 * optional or required); undefined for plain TCP, no certificate, or one that did not verify.
 */
export function peerCertificate(socket: Socket): PeerCertificate | undefined {
  const known = peers.get(socket)
  if (known !== undefined) return known ?? undefined
  let peer: PeerCertificate | null = null
  if (socket instanceof TLSSocket && socket.authorized) {
    const x509 = socket.getPeerX509Certificate()
    if (x509 !== undefined) {
      // Node prints the subject in certificate order, one attribute a line; RFC 4514 reverses it.
      const parts = x509.subject.split('\n').filter((p) => p !== '')
      const cn = parts.find((p) => p.startsWith('CN='))
      peer = { subject: parts.reverse().join(','), commonName: cn?.slice(3), fingerprint256: x509.fingerprint256, serialNumber: x509.serialNumber, validTo: x509.validTo }
    }
  }
  peers.set(socket, peer)
  return peer ?? undefined
}

/**
 * Whether a freshly secured connection may go on: under clientAuth optional, a certificate was
 * sent but does not chain to `ca` (under required Node has refused it already).
 */
export function peerRefusal(socket: TLSSocket, config: TlsConfig): string | undefined {
  if (config.clientAuth === 'none' || socket.authorized) return undefined
  // A client that sent no certificate is let in under `optional`.
  const sent = socket.getPeerX509Certificate() !== undefined
  if (!sent && config.clientAuth === 'optional') return undefined
  return `client certificate refused: ${socket.authorizationError instanceof Error ? socket.authorizationError.message : String(socket.authorizationError ?? 'not verified')}`
}

export type TlsReloadResult =
  | { readonly listener: string; readonly ok: true; readonly subject: string; readonly validTo: string }
  | { readonly listener: string; readonly ok: false; readonly file: string; readonly problem: string }

/** What a reload swaps the context of: a TLS or HTTPS server, or OTLP/gRPC's credentials. */
export type ReloadTarget = Pick<TlsServer, 'setSecureContext'>

interface Registered {
  readonly setup: TlsSetup
  readonly server: ReloadTarget
}

/** Every TLS listener of the process, so one SIGHUP reloads them all. */
export class TlsReloader {
  readonly #servers = new Set<Registered>()

  constructor(private readonly logger: Logger) {}

  /** Registers a listening server; the function given back unregisters it (on close). */
  add(setup: TlsSetup, server: ReloadTarget): () => void {
    const entry = { setup, server }
    this.#servers.add(entry)
    return () => this.#servers.delete(entry)
  }

  get size(): number {
    return this.#servers.size
  }

  /** Reads every entry's files again and swaps in those that check out; the others keep theirs. */
  reload(): TlsReloadResult[] {
    const results: TlsReloadResult[] = []
    for (const { setup, server } of this.#servers) {
      const listener = setup.label
      const material = readTlsMaterial(setup.config)
      let result: TlsReloadResult
      if (isTlsProblem(material)) {
        result = { listener, ok: false, file: setup.config[material.file] ?? material.file, problem: material.problem }
      } else {
        try {
          server.setSecureContext(tlsServerOptions(setup.config, material))
          result = { listener, ok: true, subject: material.subject, validTo: material.validTo }
        } catch (err) {
          // What the checks above cannot see (a key type OpenSSL refuses for TLS): keep the old context.
          result = { listener, ok: false, file: setup.config.cert, problem: (err as Error).message }
        }
      }
      if (result.ok) this.logger.info({ listener, subject: result.subject, validTo: result.validTo }, 'TLS certificate reloaded')
      else this.logger.error({ listener, file: result.file, problem: result.problem }, 'TLS certificate not reloaded; the one in use stays')
      results.push(result)
    }
    return results
  }
}
