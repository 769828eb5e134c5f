// The echo server of the channel benchmark (Benchmarks/README.md): answers ANY method with the
// request bytes and status OK, through gRPC C++'s callback API, so that no client under test is
// also the server. Usage: generic_server PORT (0 picks a free port). Prints "PORT <n>" once
// listening and stops when its standard input reaches end of file.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT   (0 picks a free port; stops at stdin EOF)\n", argv[0]);
    return 2;
  }
  EchoAnyMethod service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_NONE);
  // Well above the 128 concurrent calls the runner makes, and stated rather than defaulted.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1024);
  // No bandwidth-probe PINGs: every client would have to answer them, and 32-byte calls need
  // no window tuning. The clients then do only the work of the calls themselves.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "generic_server: cannot listen on 127.0.0.1:%s\n", argv[1]);
    return 1;
  }
  std::printf("PORT %d\n", port);
  std::fflush(stdout);

  while (std::getchar() != EOF) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
