// A second echo server for the channel benchmark (Benchmarks/README.md), the same contract as
// generic_server.cc (any method echoed with status OK; usage: async_generic_server PORT, prints
// "PORT <n>", stops at stdin EOF), on gRPC C++'s completion-queue API: one thread drives every
// call. Measured with h2load on 2026-11-25 (server on its own core): about 1.5x the calls per
// second of generic_server at 16 and 128 concurrent calls (73-80k/s against 48-53k/s), but about
// 25 us more latency per call at concurrency 1 (p50 81-94 us against 55-74 us), so it is not the
// default. Select it with
// `Benchmarks/run-channel-bench.py --server Benchmarks/.build-cpp/async_generic_server`.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace {

// One per call; its address is the completion-queue tag of each step.
struct EchoCall {
  enum class Step { kAccepting, kReading, kFinishing } step = Step::kAccepting;
  grpc::GenericServerContext context;
  grpc::GenericServerAsyncReaderWriter stream{&context};
  grpc::ByteBuffer message;
};

// Calls accepted ahead, so a burst of 128 new streams never waits for a RequestCall.
constexpr int kAcceptsAhead = 256;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT   (0 picks a free port; stops at stdin EOF)\n", argv[0]);
    return 2;
  }
  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterAsyncGenericService(&service);
  builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_NONE);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1024);  // as generic_server.cc
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);            // as generic_server.cc
  std::unique_ptr<grpc::ServerCompletionQueue> queue = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "async_generic_server: cannot listen on 127.0.0.1:%s\n", argv[1]);
    return 1;
  }
  std::printf("PORT %d\n", port);
  std::fflush(stdout);

  auto accept_one = [&] {
    auto* call = new EchoCall();
    service.RequestCall(&call->context, &call->stream, queue.get(), queue.get(), call);
  };
  for (int i = 0; i < kAcceptsAhead; i++) accept_one();

  std::thread stopper([&] {
    while (std::getchar() != EOF) {
    }
    server->Shutdown();
    queue->Shutdown();
  });

  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) {
    auto* call = static_cast<EchoCall*>(tag);
    switch (call->step) {
      case EchoCall::Step::kAccepting:
        if (!ok) {  // Shutting down.
          delete call;
          break;
        }
        accept_one();
        call->step = EchoCall::Step::kReading;
        call->stream.Read(&call->message, call);
        break;
      case EchoCall::Step::kReading:
        call->step = EchoCall::Step::kFinishing;
        if (!ok) {
          call->stream.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"),
                              call);
          break;
        }
        call->stream.WriteAndFinish(call->message, grpc::WriteOptions(), grpc::Status::OK, call);
        break;
      case EchoCall::Step::kFinishing:
        delete call;
        break;
    }
  }
  stopper.join();
  return 0;
}
