/// Turns text into a vector deterministically: a hashed bag of words ("the hashing trick").
///
/// 1. The text is lower-cased and split into words at every character that is not a letter or
///    a digit ("Hello, world!" → `hello`, `world`).
/// 2. Each word is hashed with 64-bit FNV-1a over its UTF-8 bytes (not Swift's `Hasher`, which
///    is seeded per process: the vectors must be the same in every run).
/// 3. The hash picks a coordinate (`hash % dimension`) and a sign (its top bit); the word adds
///    ±1 there. The sign keeps colliding words from only ever piling up.
/// 4. The vector is scaled to length 1, so the collection's COSINE metric (and IP) compares the
///    word mix, not the text's length.
///
/// Inserted texts and search queries use this same function, so a query that shares words with
/// a text lands near it; a text searched for itself is its own nearest neighbour (distance 1).
/// It knows nothing of meaning ("car" and "automobile" are unrelated): a stand-in for a real
/// embedding model, which the service would call here instead.
struct TextEmbedding {
  /// The vector's dimension.
  let dimension: Int

  /// The words of `text`, as step 1 finds them.
  static func words(of text: String) -> [Substring] {
    let lowered = text.lowercased()
    return lowered.split { !($0.isLetter || $0.isNumber) }
  }

  /// The unit vector of `text`, or nil when it has no words (nothing to compare).
  func vector(for text: String) -> [Float]? {
    let words = Self.words(of: text)
    guard !words.isEmpty else { return nil }
    var vector = [Float](repeating: 0, count: dimension)
    for word in words {
      let hash = Self.fnv1a(word.utf8)
      let index = Int(hash % UInt64(dimension))
      vector[index] += hash >> 63 == 0 ? 1 : -1
    }
    let length = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
    // Words whose ±1 cancel out exactly leave a zero vector, which has no direction.
    guard length > 0 else { return nil }
    return vector.map { $0 / length }
  }

  /// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
  static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
  }
}
