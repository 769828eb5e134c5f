/// This library's version: the one place it is written. The channel sends it in `user-agent`
/// (`milvex-reactor-swift/0.2.0`), the Milvus handshake in `ClientInfo.sdk_version`, and the
/// examples print it for `--version`. CHANGELOG.md says what each version brought and broke.
public enum MilvexReactorVersion {
  /// The library's version number (semantic versioning), as in CHANGELOG.md and the release tag.
  public static let string = "0.2.0"
}
