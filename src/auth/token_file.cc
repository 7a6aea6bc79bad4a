#include "auth/token_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace tda {

namespace {

constexpr size_t kTokenBytes = 32;
constexpr size_t kMaxNameLength = 64;

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

bool IsSha256Hex(absl::string_view hex) {
  if (hex.size() != 2 * SHA256_DIGEST_LENGTH) return false;
  for (char c : hex) {
    if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

absl::Status BadName(absl::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat(
      "token name '", name, "' must be 1-", kMaxNameLength, " characters of A-Z a-z 0-9 . _ @ -"));
}

// The entry's line: "NAME ROLE HASH".
std::string EntryLine(const TokenEntry& entry) {
  return absl::StrCat(entry.name, " ", RoleName(entry.role), " ", entry.sha256_hex, "\n");
}

// An exclusive lock on "<path>.lock" for the lifetime of the object.
class FileLock {
 public:
  [[nodiscard]] absl::Status Acquire(const std::string& path) {
    const std::string lock_path = path + ".lock";
    fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  int fd_ = -1;
};

// The file's text; empty when it does not exist yet.
[[nodiscard]] absl::StatusOr<std::string> ReadTextIfExists(const std::string& path) {
  std::string text;
  absl::Status read = ReadFile(path, &text);
  if (absl::IsNotFound(read)) return std::string();
  if (!read.ok()) return read;
  return text;
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<std::string> GenerateToken() {
  unsigned char bytes[kTokenBytes];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("the random number generator failed (RAND_bytes)");
  }
  std::string token = absl::StrCat("tda_", absl::BytesToHexString(absl::string_view(
                                               reinterpret_cast<char*>(bytes), sizeof(bytes))));
  OPENSSL_cleanse(bytes, sizeof(bytes));
  return token;
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(const std::string& file_name,
                                                       absl::string_view text) {
  std::vector<TokenEntry> entries;
  std::set<std::string> names;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ":", line_number, ": ", what));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return error(
          absl::StrCat("expected 'NAME ROLE SHA256HEX', got ", fields.size(), " field(s)"));
    }
    if (!IsValidName(fields[0])) return error(std::string(BadName(fields[0]).message()));
    absl::StatusOr<Role> role = ParseRole(fields[1]);
    if (!role.ok()) return error(std::string(role.status().message()));
    if (!IsSha256Hex(fields[2])) {
      return error(
          "the third field must be the token's SHA-256 as 64 lowercase hex digits "
          "(the token itself never goes in this file)");
    }
    if (!names.insert(std::string(fields[0])).second) {
      return error(absl::StrCat("duplicate token name '", fields[0], "'"));
    }
    entries.push_back({std::string(fields[0]), *role, std::string(fields[2])});
  }
  return entries;
}

absl::StatusOr<std::vector<TokenEntry>> ReadTokenFile(const std::string& path) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  return ParseTokenFile(path, text);
}

absl::StatusOr<std::string> CreateToken(const std::string& path, const std::string& name,
                                        Role role) {
  if (!IsValidName(name)) return BadName(name);
  FileLock lock;
  RETURN_IF_ERROR(lock.Acquire(path));
  ASSIGN_OR_RETURN(std::string text, ReadTextIfExists(path));
  ASSIGN_OR_RETURN(std::vector<TokenEntry> entries, ParseTokenFile(path, text));
  for (const TokenEntry& entry : entries) {
    if (entry.name == name) {
      return absl::AlreadyExistsError(
          absl::StrCat("a token named '", name, "' is already in ", path, " (revoke it first)"));
    }
  }
  ASSIGN_OR_RETURN(std::string token, GenerateToken());
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += EntryLine({name, role, Sha256Hex(token)});
  RETURN_IF_ERROR(WriteFileAtomically(path, text));
  return token;
}

absl::Status RevokeToken(const std::string& path, const std::string& name) {
  FileLock lock;
  RETURN_IF_ERROR(lock.Acquire(path));
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  RETURN_IF_ERROR(ParseTokenFile(path, text).status());  // refuse to edit a malformed file
  std::string kept;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::StripAsciiWhitespace(line), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() == 3 && fields[0] == name && fields[0][0] != '#') {
      found = true;
      continue;
    }
    absl::StrAppend(&kept, line, "\n");
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no token named '", name, "' in ", path));
  while (kept.size() >= 2 && kept.substr(kept.size() - 2) == "\n\n") kept.pop_back();
  return WriteFileAtomically(path, kept);
}

std::optional<TokenEntry> TokenSet::Authenticate(absl::string_view token) const {
  const std::string hash = Sha256Hex(token);
  std::optional<TokenEntry> match;
  for (const TokenEntry& entry : entries_) {  // no early exit: time does not depend on which
    if (CRYPTO_memcmp(hash.data(), entry.sha256_hex.data(), hash.size()) == 0) match = entry;
  }
  return match;
}

}  // namespace tda
