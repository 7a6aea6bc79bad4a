#include "server/server_security.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"

namespace tda {

namespace {

std::string HostOf(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

[[nodiscard]] absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::string pem;
  absl::Status read = ReadFile(path, &pem);
  if (!read.ok()) {
    return absl::Status(read.code(), absl::StrCat("--", flag, ": ", read.message()));
  }
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", path, " is not a PEM file"));
  }
  return pem;
}

}  // namespace

bool IsLoopbackHost(const std::string& host_or_bracketed) {
  const std::string host = HostOf(host_or_bracketed + ":0");
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

absl::StatusOr<std::vector<std::string>> CheckListenPolicy(const std::string& listen,
                                                           const ServerSecurityOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("give both --tls-cert and --tls-key, or neither");
  }
  if (!options.tls_client_ca_file.empty() && !options.tls()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  std::vector<std::string> warnings;
  if (IsLoopbackHost(HostOf(listen))) return warnings;
  if (options.tokens() && !options.tls()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on ", listen,
        " with --auth-tokens but without TLS: the tokens "
        "would cross the network in clear text. Add --tls-cert FILE --tls-key FILE, or listen "
        "on 127.0.0.1 (--insecure does not lift this)"));
  }
  if (options.tokens() && options.tls()) return warnings;
  if (!options.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on the non-loopback address ", listen, " without ",
        options.tls() ? "" : "TLS and ",
        "--auth-tokens: anyone who can reach it could query "
        "the index and submit or cancel jobs. Add --tls-cert FILE --tls-key FILE and "
        "--auth-tokens FILE (see 'tda admin token create'), listen on 127.0.0.1, or pass "
        "--insecure to accept the risk"));
  }
  warnings.push_back(
      absl::StrCat("INSECURE: listening on ", listen, options.tls() ? " with TLS but" : "",
                   " without ", options.tls() ? "" : "TLS or ",
                   "authentication (--insecure): anyone who can reach this "
                   "address may query the index and submit, cancel and schedule jobs"));
  return warnings;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerSecurityOptions& options, std::shared_ptr<grpc::AuthMetadataProcessor> processor) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls()) {
    absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "tls-key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    if (!options.tls_client_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_file, "tls-client-ca");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    credentials = grpc::SslServerCredentials(ssl);
  } else if (processor != nullptr) {
    credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  } else {
    return grpc::InsecureServerCredentials();  // loopback, or --insecure (CheckListenPolicy)
  }
  if (processor != nullptr) credentials->SetAuthMetadataProcessor(std::move(processor));
  return credentials;
}

}  // namespace tda
