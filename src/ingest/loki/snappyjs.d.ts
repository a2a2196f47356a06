// snappyjs ships no types; these are the two functions it exports (index.js).
declare module 'snappyjs' {
  /** Decompresses a snappy block; throws when its declared length is over `maxLength`. */
  export function uncompress<T extends Uint8Array | ArrayBuffer>(compressed: T, maxLength?: number): T
  export function compress<T extends Uint8Array | ArrayBuffer>(uncompressed: T): T
  const snappy: { readonly uncompress: typeof uncompress; readonly compress: typeof compress }
  export default snappy
}
