import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { createGunzip, type Gunzip } from 'node:zlib'
import { errors, type SluiceError } from '../../errors.js'
import { hitLimit } from '../../limits.js'

export interface BodyLimits {
  /** Decoded (after gzip) bytes of a body at most. */
  readonly maxBodyBytes: number
  /** From the headers' arrival to the body's last byte; already the shorter of bodyTimeout and requestTimeout. */
  readonly bodyTimeoutMs: number
  /** Bytes read and discarded after an early answer before the connection is closed instead. */
  readonly maxDrainBytes: number
}

/** What the door knows of one request's body while it arrives. */
interface BodyState {
  readonly startedAt: number
  /** Bytes read off the socket for this body (before gzip). */
  rawBytes: number
  gunzip: Gunzip | undefined
  /** The body ran out of time: answer, then close, without draining. */
  timedOut: boolean
}

const states = new WeakMap<IncomingMessage, BodyState>()
/** The request each socket carries now (HTTP/1.1 handles one at a time per connection). */
const current = new WeakMap<Socket, IncomingMessage>()
/** Sockets whose current request was answered while its body still arrives (see drainAfterAnswer). */
const draining = new WeakSet<Socket>()

export function beginBody(raw: IncomingMessage, now: number): void {
  states.set(raw, { startedAt: now, rawBytes: 0, gunzip: undefined, timedOut: false })
  current.set(raw.socket, raw)
}

/** Whether an answer on this socket has gone out while the request's body is still arriving. */
export function isDraining(socket: Socket): boolean {
  return draining.has(socket)
}

/** Whether this socket carries a request whose headers arrived and whose body has not. */
export function hasBodyPending(socket: Socket): boolean {
  const req = current.get(socket)
  return req !== undefined && !req.complete
}

function stateOf(raw: IncomingMessage): BodyState {
  let s = states.get(raw)
  if (s === undefined) {
    s = { startedAt: Date.now(), rawBytes: 0, gunzip: undefined, timedOut: false }
    states.set(raw, s)
  }
  return s
}

/**
 * Reads a request body whole, gunzipping it when it says so, within maxBodyBytes (of decoded
 * bytes, so a gzip bomb stops there) and within the body deadline. Whatever it refuses is left
 * for drainAfterAnswer: the answer goes out first, then the rest of the body is discarded.
 */
export function readBody(raw: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const state = stateOf(raw)
  const max = limits.maxBodyBytes
  const declared = Number(raw.headers['content-length'])
  if (declared > max) return Promise.reject(errors.bodyTooLarge(declared, max))
  const enc = raw.headers['content-encoding']
  let payload: Readable = raw
  if (enc !== undefined && enc !== 'identity') {
    if (enc !== 'gzip' && enc !== 'x-gzip') return Promise.reject(errors.badRequest(`content-encoding "${enc}" is not supported; use gzip or none`))
    state.gunzip = createGunzip()
    // An error after the promise settled (the request answered, its listeners gone) must not end
    // the process as an unhandled 'error' event: this one stays for the stream's whole life.
    state.gunzip.on('error', () => undefined)
    payload = raw.pipe(state.gunzip)
  }
  // A gzip member followed by zero padding ends the decoded side while bytes may still arrive
  // (non-zero ones are an error, reported only once zlib has read them): the body is whole when
  // the gunzip has read everything too ('finish'), not merely stopped producing ('end').
  const gunzip = state.gunzip
  let waiting = gunzip === undefined ? 1 : 2
  const remainingMs = state.startedAt + limits.bodyTimeoutMs - Date.now()
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const finish = (err: SluiceError | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      raw.off('data', onRaw)
      raw.off('close', onClose)
      payload.off('data', onData)
      payload.off('end', onEnd)
      payload.off('error', onError)
      gunzip?.off('finish', onEnd)
      if (err === undefined) {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
        return
      }
      // Stop decoding now: what is left of a refused body is read raw and discarded.
      if (state.gunzip !== undefined) {
        raw.unpipe(state.gunzip)
        state.gunzip.destroy()
      }
      if (payload === raw) raw.pause()
      chunks.length = 0
      reject(err)
    }
    const onRaw = (c: Buffer): void => {
      state.rawBytes += c.length
      if (state.rawBytes > max) finish(errors.bodyTooLarge(state.rawBytes, max))
    }
    const onData = (c: Buffer): void => {
      size += c.length
      if (size > max) finish(errors.bodyTooLarge(size, max))
      else chunks.push(c)
    }
    const onEnd = (): void => {
      if (--waiting === 0) finish(undefined)
    }
    const onError = (e: Error & { code?: string }): void => {
      finish(e.code?.startsWith('Z_') === true ? errors.badRequest(`the gzip body cannot be decoded: ${e.message}`) : errors.badRequest(`the body could not be read: ${e.message}`))
    }
    // The client went away mid-body: nobody is left to answer, but the promise must settle.
    const onClose = (): void => {
      if (!raw.complete) finish(errors.badRequest('the client closed the connection before the body was complete'))
    }
    const timer = setTimeout(() => {
      state.timedOut = true
      finish(errors.requestTimeout('body', 'bodyTimeout', limits.bodyTimeoutMs))
    }, Math.max(0, remainingMs))
    raw.on('data', onRaw)
    raw.once('close', onClose)
    payload.on('data', onData)
    payload.once('end', onEnd)
    payload.once('error', onError)
    gunzip?.once('finish', onEnd)
  })
}

/**
 * Called as an answer goes out. When the request's body has not all arrived (an early 413, 429,
 * 503, or any answer that did not read it), closing now would make the client's kernel answer its
 * remaining bytes with a reset, and many clients (Node's fetch among them) then report EPIPE
 * instead of the answer. So, as nginx's lingering close does, the rest is read and discarded, up
 * to maxDrainBytes and the body deadline, and the connection stays usable; past either it is
 * closed. Returns whether the answer must carry `Connection: close`.
 */
export function drainAfterAnswer(raw: IncomingMessage, limits: BodyLimits, closing: boolean): boolean {
  if (raw.complete || raw.destroyed) return false
  const state = stateOf(raw)
  if (state.gunzip !== undefined) {
    raw.unpipe(state.gunzip)
    state.gunzip.destroy()
    state.gunzip = undefined
  }
  const declared = Number(raw.headers['content-length'])
  const remainingMs = state.startedAt + limits.bodyTimeoutMs - Date.now()
  const tooMuch = Number.isFinite(declared) && declared - state.rawBytes > limits.maxDrainBytes
  if (closing || state.timedOut || remainingMs <= 0 || tooMuch) {
    if (tooMuch) hitLimit('http.maxDrainSize')
    return true
  }
  const socket = raw.socket
  draining.add(socket)
  let drained = 0
  const stop = (): void => {
    clearTimeout(timer)
    raw.off('data', onData)
    draining.delete(socket)
  }
  const onData = (c: Buffer): void => {
    drained += c.length
    if (drained > limits.maxDrainBytes) {
      hitLimit('http.maxDrainSize')
      stop()
      socket.destroy()
    }
  }
  const timer = setTimeout(() => {
    hitLimit('http.bodyTimeout')
    stop()
    socket.destroy()
  }, remainingMs)
  raw.on('data', onData)
  raw.once('end', stop)
  raw.once('close', stop)
  raw.resume()
  return false
}
