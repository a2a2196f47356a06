import { crc32c as nativeCrc32c } from '@node-rs/crc32'

// CRC-32C (Castagnoli) rather than the zlib CRC-32: it has hardware support (SSE4.2, ARMv8),
// and the native binding checks a batch at several GB/s, so verifying on every read is affordable.
export function crc32c(data: Uint8Array): number {
  return nativeCrc32c(data as Buffer) >>> 0
}
