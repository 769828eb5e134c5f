// The platforms MilvexReactor supports (README.md, "Supported platforms"): Linux with glibc.
// The socket, signal and thread code is written against Glibc; anywhere else the build stops
// here, with this one message, instead of with errors deep inside the sources.
#if !os(Linux) || !canImport(Glibc)
  #error(
    "MilvexReactor supports only Linux with glibc (Swift 6.0+): see README, Supported platforms"
  )
#endif
