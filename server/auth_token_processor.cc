#include "server/auth_token_processor.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/caller.h"
#include "server/caller_role.h"
#include "server/rpc_roles.h"

namespace tda {

namespace {

constexpr char kAuthorizationKey[] = "authorization";
constexpr char kBearerPrefix[] = "bearer ";

absl::string_view View(const grpc::string_ref& ref) { return {ref.data(), ref.size()}; }

grpc::Status Unauthenticated(const std::string& why) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
}

// The first value of `property` in `context`, or "".
std::string FirstProperty(const grpc::AuthContext& context, const char* property) {
  for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
    return std::string(View(value));
  }
  return "";
}

}  // namespace

absl::StatusOr<std::shared_ptr<TokenAuthProcessor>> TokenAuthProcessor::Load(
    const std::string& token_file) {
  auto processor = std::shared_ptr<TokenAuthProcessor>(new TokenAuthProcessor(token_file));
  absl::StatusOr<size_t> loaded = processor->Reload();
  if (!loaded.ok()) return loaded.status();
  return processor;
}

absl::StatusOr<size_t> TokenAuthProcessor::Reload() {
  absl::StatusOr<std::vector<TokenEntry>> entries = ReadTokenFile(token_file_);
  if (!entries.ok()) return entries.status();
  auto tokens = std::make_shared<const TokenSet>(std::move(*entries));
  absl::MutexLock lock(&mu_);
  tokens_ = tokens;
  return tokens->size();
}

std::shared_ptr<const TokenSet> TokenAuthProcessor::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

grpc::Status TokenAuthProcessor::PinIdentity(const TokenEntry& entry, grpc::AuthContext* context) {
  absl::MutexLock lock(&pin_mu_);
  const std::string pinned_name = FirstProperty(*context, kCallerProperty);
  if (pinned_name.empty()) {
    context->AddProperty(kCallerProperty, entry.name);
    context->AddProperty(kRoleProperty, RoleName(entry.role));
    return grpc::Status::OK;
  }
  if (pinned_name != entry.name || FirstProperty(*context, kRoleProperty) != RoleName(entry.role)) {
    return Unauthenticated(absl::StrCat("this connection is authenticated as token '", pinned_name,
                                        "'; one token per "
                                        "connection (open a new connection for token '",
                                        entry.name, "' or its new role)"));
  }
  return grpc::Status::OK;
}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  const auto path_entry = auth_metadata.find(":path");
  const absl::string_view method =
      path_entry == auth_metadata.end() ? absl::string_view() : View(path_entry->second);
  if (IsPublicMethod(method)) return grpc::Status::OK;

  const auto header = auth_metadata.find(kAuthorizationKey);
  if (header == auth_metadata.end()) {
    return Unauthenticated(
        "no token: send 'authorization: Bearer TOKEN' metadata (tda: --token, --token-file "
        "or TDA_TOKEN)");
  }
  const absl::string_view value = View(header->second);
  if (value.size() <= sizeof(kBearerPrefix) - 1 ||
      !absl::EqualsIgnoreCase(value.substr(0, sizeof(kBearerPrefix) - 1), kBearerPrefix)) {
    return Unauthenticated("the authorization metadata must be 'Bearer TOKEN'");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(value.substr(sizeof(kBearerPrefix) - 1));
  const std::optional<TokenEntry> entry = tokens()->Authenticate(token);
  if (!entry) return Unauthenticated("unknown or revoked token");
  consumed_auth_metadata->insert({kAuthorizationKey, std::string(value)});

  if (grpc::Status pinned = PinIdentity(*entry, context); !pinned.ok()) return pinned;
  const std::optional<Role> required = RequiredRole(method);
  if (!required) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("method '", method,
                                     "' is not in tda-server's role table "
                                     "(server/rpc_roles.cc), so no role may call it"));
  }
  if (!RoleAtLeast(entry->role, *required)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat(method, " needs role ", RoleName(*required), "; token '",
                                     entry->name, "' has role ", RoleName(entry->role)));
  }
  return grpc::Status::OK;
}

}  // namespace tda
