// The echo server of the channel benchmark (Benchmarks/README.md): answers ANY method with the
// request bytes and status OK, through gRPC C++'s callback API, so that no client under test is
// also the server. Prints "PORT <n>" once listening and stops when its standard input reaches
// end of file.
//
//   generic_server PORT                                   plaintext HTTP/2 (0 picks a free port)
//   generic_server --tls-cert PEM --tls-key KEY PORT      TLS (ALPN h2), no client certificate
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

namespace {

// One per call: read the one request message, write it back and finish in a single batch.
class EchoReactor final : public grpc::ServerGenericBidiReactor {
 public:
  EchoReactor() { StartRead(&message_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client half-closed without a message: nothing to echo.
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    StartWriteAndFinish(&message_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer message_;
};

class EchoAnyMethod final : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new EchoReactor();
  }
};

// The whole file, or false if it cannot be read or is empty.
bool ReadFile(const char* path, std::string* contents) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  contents->assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return !contents->empty();
}

int Usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--tls-cert PEM --tls-key KEY] PORT\n"
               "  PORT 0 picks a free port; the server stops at end of its stdin.\n",
               program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* certificate_path = nullptr;
  const char* key_path = nullptr;
  const char* port_argument = nullptr;
  for (int index = 1; index < argc; ++index) {
    std::string argument = argv[index];
    if ((argument == "--tls-cert" || argument == "--tls-key") && index + 1 < argc) {
      (argument == "--tls-cert" ? certificate_path : key_path) = argv[++index];
    } else if (port_argument == nullptr && !argument.empty() && argument[0] != '-') {
      port_argument = argv[index];
    } else {
      return Usage(argv[0]);
    }
  }
  if (port_argument == nullptr || (certificate_path == nullptr) != (key_path == nullptr)) {
    return Usage(argv[0]);
  }

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (certificate_path != nullptr) {
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!ReadFile(key_path, &pair.private_key) || !ReadFile(certificate_path, &pair.cert_chain)) {
      std::fprintf(stderr, "generic_server: cannot read --tls-cert %s or --tls-key %s\n",
                   certificate_path, key_path);
      return 1;
    }
    // Server authentication only: clients present no certificate, as in the benchmark.
    grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    options.pem_key_cert_pairs.push_back(pair);
    credentials = grpc::SslServerCredentials(options);
  }

  EchoAnyMethod service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(std::string("127.0.0.1:") + port_argument, credentials, &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_NONE);
  // Well above the 128 concurrent calls the runner makes, and stated rather than defaulted.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1024);
  // No bandwidth-probe PINGs: every client would have to answer them, and 32-byte calls need
  // no window tuning. The clients then do only the work of the calls themselves.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "generic_server: cannot listen on 127.0.0.1:%s\n", port_argument);
    return 1;
  }
  std::printf("PORT %d\n", port);
  std::fflush(stdout);

  while (std::getchar() != EOF) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
