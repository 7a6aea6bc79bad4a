// The bearer-token file of tda-server (--auth-tokens FILE), written by `tda admin token`.
//
// Format: one token per line, "NAME ROLE SHA256HEX", fields separated by spaces or tabs; NAME
// is [A-Za-z0-9._@-]{1,64} and unique in the file, ROLE one of auth/role.h, SHA256HEX the
// lowercase hex SHA-256 of the token (64 digits). '#' starts a comment line; blank lines are
// allowed. The token itself is never stored: only its hash, so the file reveals no secret.
//
// Tokens are 32 random bytes from OpenSSL's RAND_bytes, written as "tda_" + 64 hex digits.
// Hashes are compared in constant time (CRYPTO_memcmp) over every entry.
//
// Edits (append, revoke) hold an exclusive flock on "FILE.lock" and replace the file atomically
// (auth/../common/atomic_file.h), so a concurrent edit or a server reloading it never sees a
// torn file. Thread-safety: TokenSet is immutable after construction; functions are
// thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/role.h"

namespace tda {

struct TokenEntry {
  std::string name;
  Role role = Role::kReader;
  std::string sha256_hex;  // of the token
};

// Lowercase hex SHA-256 of `data` (OpenSSL).
std::string Sha256Hex(absl::string_view data);
// A new random token ("tda_" + 64 hex digits); kInternal if the RNG fails.
[[nodiscard]] absl::StatusOr<std::string> GenerateToken();

// Parses the text of a token file; kInvalidArgument naming `file_name`, the line number and
// what is wrong (bad field count, bad name, unknown role, bad hash, duplicate name).
[[nodiscard]] absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(const std::string& file_name,
                                                                     absl::string_view text);
// Reads and parses FILE (kNotFound when missing).
[[nodiscard]] absl::StatusOr<std::vector<TokenEntry>> ReadTokenFile(const std::string& path);

// Appends an entry for a new token named `name` (creating the file when missing) and returns
// the token, which exists nowhere else: the caller shows it once. kAlreadyExists when the
// name is taken, kInvalidArgument for a bad name.
[[nodiscard]] absl::StatusOr<std::string> CreateToken(const std::string& path,
                                                      const std::string& name, Role role);
// Removes the entry named `name`; kNotFound when there is none.
[[nodiscard]] absl::Status RevokeToken(const std::string& path, const std::string& name);

// The tokens a server accepts.
class TokenSet {
 public:
  explicit TokenSet(std::vector<TokenEntry> entries) : entries_(std::move(entries)) {}
  // The entry whose hash is SHA-256(token), comparing every entry in constant time.
  std::optional<TokenEntry> Authenticate(absl::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
};

}  // namespace tda
