// Error-propagation macros for absl::Status / absl::StatusOr.
// Abseil 20220623 (Debian 12) predates ABSL_RETURN_IF_ERROR and friends, so tda defines its own
// once, here. Every fallible call in src/ returns a Status and is propagated with these.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TDA_CONCAT_INNER_(a, b) a##b
#define TDA_CONCAT_(a, b) TDA_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::absl::Status tda_status_ = (expr);          \
    if (!tda_status_.ok()) return tda_status_;    \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from the value of a StatusOr, or returns its error.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  TDA_ASSIGN_OR_RETURN_IMPL_(TDA_CONCAT_(tda_statusor_, __LINE__), lhs, rexpr)

#define TDA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
