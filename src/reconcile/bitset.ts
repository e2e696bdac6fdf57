/**
 * A set of sequence numbers, one bit each. Sequences of a campaign are dense (1..issued), so a bitset
 * holds a 1,000,000-claim campaign's membership in 125 KB where a Set of claim ids would take ~100 MB:
 * this is what keeps reconcile's memory flat while it joins Redis and the database.
 */
export class SeqBitset {
  private words: Uint32Array

  constructor(expected = 1024) {
    this.words = new Uint32Array(Math.max(1, Math.ceil((expected + 1) / 32)))
  }

  private grow(seq: number): void {
    let n = this.words.length
    while (n * 32 <= seq) n *= 2
    const next = new Uint32Array(n)
    next.set(this.words)
    this.words = next
  }

  add(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`bad sequence ${seq}`)
    if (seq >= this.words.length * 32) this.grow(seq)
    this.words[seq >>> 5]! |= 1 << (seq & 31)
  }

  delete(seq: number): void {
    if (seq >= 0 && seq < this.words.length * 32) this.words[seq >>> 5]! &= ~(1 << (seq & 31))
  }

  has(seq: number): boolean {
    if (seq < 0 || seq >= this.words.length * 32) return false
    return (this.words[seq >>> 5]! & (1 << (seq & 31))) !== 0
  }

  /** Highest member, or 0 when empty. */
  max(): number {
    for (let w = this.words.length - 1; w >= 0; w--) {
      const v = this.words[w]!
      if (v !== 0) return w * 32 + 31 - Math.clz32(v)
    }
    return 0
  }

  /** Number of members. */
  count(): number {
    let n = 0
    for (let v of this.words) {
      // Popcount of a 32-bit word (Hacker's Delight 5-2).
      v = v - ((v >>> 1) & 0x55555555)
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
      n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
    }
    return n
  }

  get bytes(): number {
    return this.words.byteLength
  }
}

/**
 * A 32-bit fingerprint of the claim id Redis holds at each sequence (4 bytes per sequence), so a row or
 * stream entry can be told apart from a different claim at the same sequence without keeping ids.
 */
export class SeqFingerprints {
  private values: Uint32Array

  constructor(expected = 1024) {
    this.values = new Uint32Array(Math.max(32, expected + 1))
  }

  set(seq: number, fp: number): void {
    if (seq >= this.values.length) {
      let n = this.values.length
      while (n <= seq) n *= 2
      const next = new Uint32Array(n)
      next.set(this.values)
      this.values = next
    }
    this.values[seq] = fp
  }

  get(seq: number): number {
    return seq < this.values.length ? this.values[seq]! : 0
  }
}

/** FNV-1a over the id's UTF-16 code units; 0 is kept free to mean "none". */
export function fingerprint(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) || 1
}
