import type { Collector, CompiledBinding } from './target.js'

// Topic matching follows RabbitMQ's rabbit_exchange_type_topic exactly:
// - a key is split on every `.`; `""` is zero words, `"."` is two empty words, `"a..b"` three;
// - binding word `*` matches exactly one word (an empty one too), `#` zero or more words;
// - every other binding word matches only the identical key word.
// The trie walks the key once per live branch, so the cost depends on the key and the patterns'
// shapes, not on how many bindings share them.

const noWords: readonly string[] = []

export function splitTopic(key: string): readonly string[] {
  return key === '' ? noWords : key.split('.')
}

/**
 * `#.#` matches exactly what `#` matches. Collapsing runs of `#` at bind time keeps the walk from
 * exploring the same positions once per extra `#`, which is quadratic per run on long keys.
 */
function patternWords(key: string): string[] {
  const words = key === '' ? [] : key.split('.')
  const out: string[] = []
  for (const w of words) if (!(w === '#' && out[out.length - 1] === '#')) out.push(w)
  return out
}

class TopicNode {
  children: Map<string, TopicNode> | null = null
  star: TopicNode | null = null
  hash: TopicNode | null = null
  bindings: CompiledBinding[] = []

  isEmpty(): boolean {
    return this.bindings.length === 0 && this.star === null && this.hash === null && (this.children === null || this.children.size === 0)
  }

  isLeaf(): boolean {
    return this.star === null && this.hash === null && (this.children === null || this.children.size === 0)
  }
}

// An explicit stack instead of recursion: a routing key with tens of thousands of dots must not
// overflow the call stack. Shared by every trie because matching is synchronous and not reentrant.
const stackNodes: TopicNode[] = []
const stackPositions: number[] = []

export class TopicTrie {
  readonly type = 'topic'
  readonly #root = new TopicNode()

  add(binding: CompiledBinding, key: string): void {
    let node = this.#root
    for (const word of patternWords(key)) {
      if (word === '*') node = node.star ??= new TopicNode()
      else if (word === '#') node = node.hash ??= new TopicNode()
      else {
        const children = (node.children ??= new Map())
        let child = children.get(word)
        if (child === undefined) children.set(word, (child = new TopicNode()))
        node = child
      }
    }
    node.bindings.push(binding)
  }

  remove(binding: CompiledBinding, key: string): void {
    const words = patternWords(key)
    const path: TopicNode[] = [this.#root]
    let node: TopicNode | null | undefined = this.#root
    for (const word of words) {
      node = word === '*' ? node.star : word === '#' ? node.hash : node.children?.get(word)
      if (node == null) return
      path.push(node)
    }
    const i = node.bindings.indexOf(binding)
    if (i < 0) return
    node.bindings.splice(i, 1)
    // Prune nodes left empty, deepest first, so deleted bindings do not leave dead branches the
    // walk would still have to enter.
    for (let depth = words.length; depth > 0; depth--) {
      const child = path[depth]!
      if (!child.isEmpty()) break
      const parent = path[depth - 1]!
      const word = words[depth - 1]!
      if (word === '*') parent.star = null
      else if (word === '#') parent.hash = null
      else parent.children?.delete(word)
    }
  }

  collect(words: readonly string[], c: Collector): void {
    const end = words.length
    let sp = 0
    stackNodes[sp] = this.#root
    stackPositions[sp++] = 0
    while (sp > 0) {
      sp--
      const node = stackNodes[sp]!
      const at = stackPositions[sp]!
      if (at === end) {
        if (node.bindings.length > 0) c.addAll(node.bindings)
        // A `#` here may still match zero remaining words.
        if (node.hash !== null) {
          stackNodes[sp] = node.hash
          stackPositions[sp++] = end
        }
        continue
      }
      if (node.children !== null) {
        const child = node.children.get(words[at]!)
        if (child !== undefined) {
          stackNodes[sp] = child
          stackPositions[sp++] = at + 1
        }
      }
      if (node.star !== null) {
        stackNodes[sp] = node.star
        stackPositions[sp++] = at + 1
      }
      const hash = node.hash
      if (hash !== null) {
        // A trailing `#` (`a.#`, `#`) matches whatever remains: no need to try every split point.
        if (hash.isLeaf()) c.addAll(hash.bindings)
        else {
          for (let skip = at; skip <= end; skip++) {
            stackNodes[sp] = hash
            stackPositions[sp++] = skip
          }
        }
      }
    }
  }
}
