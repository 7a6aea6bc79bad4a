#include "client/channel.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_interceptor.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"

namespace tda {

namespace {

constexpr int kProbeTimeoutMs = 2000;

// Adds "authorization: Bearer TOKEN" to every call's initial metadata.
class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerTokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel
};

struct HostPort {
  std::string host, port;
};

[[nodiscard]] absl::StatusOr<HostPort> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server '", address, "' is not HOST:PORT (e.g. 127.0.0.1:50051)"));
  }
  HostPort out{address.substr(0, colon), address.substr(colon + 1)};
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

[[nodiscard]] absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::string pem;
  if (absl::Status read = ReadFile(path, &pem); !read.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", read.message()));
  }
  return pem;
}

[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ConnectionOptions& options) {
  if (!options.tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file, "tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

// Whether a plain TCP connection to `address` is refused (true) or accepted / undecided.
bool TcpConnectionRefused(const std::string& address) {
  absl::StatusOr<HostPort> hp = SplitAddress(address);
  if (!hp.ok()) return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(hp->host.c_str(), hp->port.c_str(), &hints, &found) != 0) return false;
  bool refused = true;
  for (addrinfo* a = found; a != nullptr && refused; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      refused = false;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int error = 0;
      socklen_t length = sizeof(error);
      if (poll(&p, 1, kProbeTimeoutMs) != 1 ||
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != ECONNREFUSED) {
        refused = false;
      }
    } else if (errno != ECONNREFUSED) {
      refused = false;
    }
    close(fd);
  }
  freeaddrinfo(found);
  return refused;
}

[[nodiscard]] absl::Status ConnectFailure(const ConnectionOptions& options) {
  if (TcpConnectionRefused(options.address)) {
    return absl::UnavailableError(absl::StrCat("cannot connect to tda-server at ", options.address,
                                               ": connection refused (is it running there?)"));
  }
  return absl::UnavailableError(absl::StrCat(
      "cannot connect to tda-server at ", options.address,
      ": it accepts connections but the handshake failed; ",
      options.tls() ? "is --tls-ca the CA of its certificate, does the certificate name that "
                      "host, and does the server require a client certificate (--tls-cert, "
                      "--tls-key)? Or the server does not use TLS"
                    : "if the server uses TLS, give --tls-ca CA.pem"));
}

}  // namespace

void AddConnectionFlags(FlagParser& flags, bool server_required, const std::string& server_help) {
  if (server_required) {
    flags.AddRequiredString("server", "ADDR", server_help);
  } else {
    flags.AddString("server", "ADDR", "", server_help);
  }
  flags.AddString("tls-ca", "FILE", "",
                  "PEM CA certificate the server's TLS certificate must "
                  "chain to (uses TLS)");
  flags.AddString("tls-cert", "FILE", "", "PEM client certificate for mutual TLS");
  flags.AddString("tls-key", "FILE", "", "PEM private key of --tls-cert");
  flags.AddString("token", "TOKEN", "",
                  "bearer token (visible to other local users in the "
                  "process list: prefer --token-file or TDA_TOKEN)");
  flags.AddString("token-file", "FILE", "", "file whose first line is the bearer token");
}

absl::Status ValidateServerAddress(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return absl::OkStatus();
  absl::StatusOr<HostPort> hp = SplitAddress(address);
  if (!hp.ok()) return hp.status();
  int port = 0;
  if (!absl::SimpleAtoi(hp->port, &port) || port < 1 || port > 65535 ||
      hp->port.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--server '", address, "': the port must be a number in 1..65535, got '", hp->port, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConnectionOptions> ConnectionFromFlags(const FlagParser& flags) {
  ConnectionOptions options;
  options.address = flags.GetString("server");
  if (options.address.empty()) return options;  // offline (the command checks it may be)
  if (absl::Status valid = ValidateServerAddress(options.address); !valid.ok()) return valid;
  options.tls_ca_file = flags.GetString("tls-ca");
  options.tls_cert_file = flags.GetString("tls-cert");
  options.tls_key_file = flags.GetString("tls-key");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("give both --tls-cert and --tls-key, or neither");
  }
  const std::string token_file = flags.GetString("token-file");
  if (flags.IsSet("token") && !token_file.empty()) {
    return absl::InvalidArgumentError("give --token or --token-file, not both");
  }
  if (flags.IsSet("token")) {
    options.token = flags.GetString("token");
  } else if (!token_file.empty()) {
    std::string text;
    if (absl::Status read = ReadFile(token_file, &text); !read.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--token-file: ", read.message()));
    }
    options.token = std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
  } else if (const char* env = std::getenv("TDA_TOKEN"); env != nullptr) {
    options.token = std::string(absl::StripAsciiWhitespace(env));
  }
  return options;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(const ConnectionOptions& options) {
  if (absl::Status valid = ValidateServerAddress(options.address); !valid.ok()) return valid;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // A connection of its own: gRPC would otherwise share one connection among channels to the
  // same address, and tda-server binds one token to each connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.token.empty()) {
    interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(options.token));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(options.address, *credentials,
                                                                 args, std::move(interceptors));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(const ConnectionOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> created = CreateChannel(options);
  if (!created.ok()) return created.status();
  std::shared_ptr<grpc::Channel> channel = std::move(*created);
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(options.connect_timeout_seconds * 1000));
  for (grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
       state != GRPC_CHANNEL_READY; state = channel->GetState(/*try_to_connect=*/true)) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return ConnectFailure(options);
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to tda-server at ",
                                                 options.address, ": no answer within ",
                                                 options.connect_timeout_seconds, " s"));
    }
  }
  return channel;
}

}  // namespace tda
