import MilvexReactor

extension SearchService {
  /// The collection's schema for vectors of `dimension`.
  static func schema(dimension: Int) -> CollectionSchema {
    CollectionSchema(
      fields: [
        .primaryKey("id", .int64),
        .field("text", .varChar(maxLength: maxTextBytes)),
        .vector("vector", dimension: dimension),
      ],
      description: "texts of milvex-search-service, embedded by a hashed bag of words")
  }

  /// Gets the collection ready, one callback after the other: if it is missing, creates it
  /// (strong consistency, so a search sees the inserts before it) with a COSINE index; if it
  /// exists, checks that its fields fit; then loads it and waits until it is loaded (the
  /// library's load wait). A step that fails is retried after 2 s, except a collection whose
  /// fields do not fit.
  ///
  /// - Important: Loop thread only.
  func prepareCollection() {
    run("checking whether collection '\(collection)' exists", .hasCollection(collection)) {
      [self] exists in
      if exists {
        run("describing collection '\(collection)'", .describeCollection(collection)) {
          [self] description in
          if let mismatch = mismatch(of: description.schema) {
            setupFailed(permanently: true, mismatch)
          } else {
            load()
          }
        }
      } else {
        create()
      }
    }
  }

  private func create() {
    let schema = Self.schema(dimension: embedding.dimension)
    run(
      "creating collection '\(collection)'",
      .createCollection(collection, schema: schema, consistencyLevel: .strong)
    ) { [self] _ in
      let index = IndexSpec(fieldName: "vector", metricType: .cosine)
      run("indexing collection '\(collection)'", .createIndex(on: collection, index)) {
        [self] _ in
        log("created collection '\(collection)' (dimension \(embedding.dimension))")
        load()
      }
    }
  }

  /// Loads the collection with the library's load wait (`LoadCollection`, then its load state
  /// polled on loop timers until it is loaded), logging its progress; the wait is cancelled
  /// at shutdown (``stop()``).
  private func load() {
    guard !stopped else { return }
    loadWait = client.onLoop.loadCollection(
      collection, timeout: .seconds(60),
      progress: { [self] percent in log("collection '\(collection)': \(percent) % loaded") }
    ) { [self] result in
      loadWait = nil
      guard !stopped else { return }
      switch result {
      case .success:
        collectionReady = true
        setupProblem = nil
        announce("collection '\(collection)' is ready")
      case .failure(let error):
        setupFailed(permanently: false, "loading collection '\(collection)' failed: \(error)")
      }
    }
  }

  /// What keeps an existing collection's schema from serving this service, if anything.
  private func mismatch(of schema: CollectionSchema) -> String? {
    let wanted =
      "needs int64 primary key 'id', varchar 'text' and float vector 'vector' of "
      + "dimension \(embedding.dimension); drop it or use --collection with another name"
    guard let id = schema.field(named: "id"), id.isPrimaryKey, id.type == .int64, !id.autoID
    else {
      return "collection '\(collection)' has no int64 primary key 'id' (without auto id); \(wanted)"
    }
    guard case .varChar = schema.field(named: "text")?.type else {
      return "collection '\(collection)' has no varchar field 'text'; \(wanted)"
    }
    guard case .floatVector(let dimension) = schema.field(named: "vector")?.type,
      dimension == embedding.dimension
    else {
      let found = schema.field(named: "vector").map { "is \($0.type)" } ?? "is missing"
      return "collection '\(collection)': its field 'vector' \(found); \(wanted)"
    }
    return nil
  }

  /// Performs one step of the preparation; a failure is reported and the preparation retried.
  private func run<Output>(
    _ step: String, _ call: MilvusCall<Output>, then next: @escaping (Output) -> Void
  ) {
    guard !stopped else { return }
    client.onLoop.perform(call, options: Self.callOptions) { [self] result in
      guard !stopped else { return }
      switch result {
      case .success(let output): next(output)
      case .failure(let error): setupFailed(permanently: false, "\(step) failed: \(error)")
      }
    }
  }

  private func setupFailed(permanently: Bool, _ problem: String) {
    setupProblem = problem
    log(problem + (permanently ? "" : " (trying again in 2 s)"))
    guard !permanently else { return }
    setupTimer = HostTimer(loop: loop, after: 2) { [weak self] in self?.prepareCollection() }
  }
}
