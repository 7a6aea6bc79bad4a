// The SQLite helpers of JobStore's implementation files (job_store.cc, job_store_schedules.cc):
// a prepared statement and a write transaction. Private to src/jobs; callers hold JobStore::mu_.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "jobs/job_store.h"

namespace tda {

// A prepared statement, finalised on destruction.
class JobStore::Statement {
 public:
  Statement(JobStore* store, const char* sql) : store_(store) {
    rc_ = sqlite3_prepare_v2(store->db_, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  [[nodiscard]] absl::Status status() const {
    return rc_ == SQLITE_OK ? absl::OkStatus() : store_->Error("prepare");
  }
  Statement& Bind(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& Bind(int i, double v) { return Check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& Bind(int i, const std::string& v) {
    return Check(
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  // SQLITE_ROW: true; SQLITE_DONE: false; errors as a Status.
  [[nodiscard]] absl::StatusOr<bool> Step() {
    if (rc_ != SQLITE_OK) return store_->Error("prepare/bind");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return store_->Error("step");
  }
  [[nodiscard]] absl::Status Run() {
    absl::StatusOr<bool> r = Step();
    return r.ok() ? absl::OkStatus() : r.status();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    return text == nullptr ? std::string()
                           : std::string(reinterpret_cast<const char*>(text),
                                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  Statement& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  JobStore* store_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE on construction (takes the write lock, waiting up to the busy timeout);
// ROLLBACK on destruction unless Commit succeeded.
class JobStore::Transaction {
 public:
  explicit Transaction(JobStore* store) : store_(store) {
    begin_ = store_->Exec("BEGIN IMMEDIATE");
  }
  ~Transaction() {
    if (begin_.ok() && !committed_) store_->Exec("ROLLBACK").IgnoreError();
  }
  const absl::Status& status() const { return begin_; }
  [[nodiscard]] absl::Status Commit() {
    RETURN_IF_ERROR(store_->Exec("COMMIT"));
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  JobStore* store_;
  absl::Status begin_;
  bool committed_ = false;
};

}  // namespace tda
