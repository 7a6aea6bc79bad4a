// Cross-request batching of Attribute (server/query_batcher.h), end to end through the real
// tda-server on loopback with a small real Fashion-MNIST index. The server batches for up to
// 200 ms here (--batch-timeout-micros 200000, --max-batch-size 8), so that a burst of calls
// started together on this loaded machine lands in one batch for certain.
//
// What is proven: in a burst, each caller gets exactly the answer its call gets alone (ids,
// scores to float rounding, per-source sums, per-document totals, returned scores, raw query
// ids counted within its own request); calls with different options never share a batch
// (the tda-batch-queries trailing metadata, and the call log's batch_queries, say how many
// queries were computed together); a call of max-batch-size queries runs alone; a caller
// with an unknown sample id fails alone while the others of its batch are answered; callers
// whose deadline passes or who cancel while their batch waits return at once, and the
// remaining member is answered.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "child_process.h"
#include "tda/v1/attribution.grpc.pb.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr int kMaxBatch = 8;

// One Attribute call on its own thread, with an optional deadline and client-side cancel.
class Call {
 public:
  Call(v1::AttributionService::Stub* stub, const v1::AttributeRequest& request,
       std::optional<std::chrono::milliseconds> timeout = std::nullopt,
       std::optional<std::chrono::milliseconds> cancel_after = std::nullopt) {
    if (timeout.has_value()) context_.set_deadline(std::chrono::system_clock::now() + *timeout);
    start_ = Clock::now();
    thread_ = std::thread([this, stub, request] {
      status_ = stub->Attribute(&context_, request, &response_);
      ms_ = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    });
    if (cancel_after.has_value()) {
      std::this_thread::sleep_for(*cancel_after);
      context_.TryCancel();
    }
  }
  ~Call() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const grpc::Status& status() { return Join(), status_; }
  const v1::AttributeResponse& response() { return Join(), response_; }
  double ms() { return Join(), ms_; }
  // The server's tda-batch-queries trailing metadata (0 when absent).
  int64_t batch_queries() {
    Join();
    const auto& trailing = context_.GetServerTrailingMetadata();
    const auto it = trailing.find("tda-batch-queries");
    int64_t n = 0;
    if (it != trailing.end()) {
      EXPECT_TRUE(absl::SimpleAtoi(std::string(it->second.data(), it->second.size()), &n));
    }
    return n;
  }

 private:
  grpc::ClientContext context_;
  Clock::time_point start_;
  std::thread thread_;
  grpc::Status status_;
  v1::AttributeResponse response_;
  double ms_ = 0;
};

// Float rounding: the query gradients of a batch are computed by other kernel paths than one
// query's, and sums over the index's rows compound that (1e-4 relative for them).
void ExpectNear(double expected, double actual, const std::string& what, double relative = 1e-5) {
  EXPECT_NEAR(actual, expected, relative * std::max(1.0, std::abs(expected))) << what;
}

void ExpectSameHits(const google::protobuf::RepeatedPtrField<v1::Hit>& alone,
                    const google::protobuf::RepeatedPtrField<v1::Hit>& batched) {
  ASSERT_EQ(batched.size(), alone.size());
  for (int h = 0; h < alone.size(); ++h) {
    EXPECT_EQ(batched[h].sample_id(), alone[h].sample_id()) << "hit " << h;
    ExpectNear(alone[h].score(), batched[h].score(), "hit score");
  }
}

void ExpectSameDocuments(const google::protobuf::RepeatedPtrField<v1::DocumentTotal>& alone,
                         const google::protobuf::RepeatedPtrField<v1::DocumentTotal>& batched) {
  ASSERT_EQ(batched.size(), alone.size());
  for (int d = 0; d < alone.size(); ++d) {
    EXPECT_EQ(batched[d].document_id(), alone[d].document_id()) << "document " << d;
    ExpectNear(alone[d].sum(), batched[d].sum(), "document sum");
  }
}

// `batched` is what `alone` is, to float rounding of the scores.
void ExpectSameAnswer(const v1::AttributeResponse& alone, const v1::AttributeResponse& batched) {
  ASSERT_EQ(batched.results_size(), alone.results_size());
  EXPECT_EQ(batched.index_rows(), alone.index_rows());
  for (int q = 0; q < alone.results_size(); ++q) {
    const v1::QueryResult& a = alone.results(q);
    const v1::QueryResult& b = batched.results(q);
    SCOPED_TRACE(a.query_id());
    EXPECT_EQ(b.query_id(), a.query_id());
    EXPECT_EQ(b.label(), a.label());
    EXPECT_EQ(b.predicted_label(), a.predicted_label());
    ExpectNear(a.loss(), b.loss(), "loss");
    ExpectSameHits(a.proponents(), b.proponents());
    ExpectSameHits(a.opponents(), b.opponents());
    ASSERT_EQ(b.source_totals_size(), a.source_totals_size());
    for (int s = 0; s < a.source_totals_size(); ++s) {
      EXPECT_EQ(b.source_totals(s).source(), a.source_totals(s).source());
      EXPECT_EQ(b.source_totals(s).count(), a.source_totals(s).count());
      ExpectNear(a.source_totals(s).sum(), b.source_totals(s).sum(), "source sum", 1e-4);
    }
    ExpectSameDocuments(a.proponent_documents(), b.proponent_documents());
    ExpectSameDocuments(a.opponent_documents(), b.opponent_documents());
    ASSERT_EQ(b.scores_size(), a.scores_size());
    for (int r = 0; r < a.scores_size(); ++r) ExpectNear(a.scores(r), b.scores(r), "row score");
  }
}

v1::AttributeRequest Request(const std::vector<std::string>& ids, int top_k, v1::Method method) {
  v1::AttributeRequest request;
  for (const std::string& id : ids) request.add_queries()->set_sample_id(id);
  request.set_top_k(top_k);
  request.set_method(method);
  return request;
}

std::string TestId(int i) { return absl::StrCat("fashion-mnist/test/", i); }

class QueryBatchingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    absl::StatusOr<std::string> index = testing::BuildSmallIndex(dir_->path());
    ASSERT_TRUE(index.ok()) << index.status();
    absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
        {"/bin/sh", "-c",
         std::string("exec ") + TDA_SERVER_BINARY + " --index " + *index +
             " --listen 127.0.0.1:0 --threads 1 --batch-timeout-micros 200000 --max-batch-size " +
             std::to_string(kMaxBatch) + " 2> " + dir_->file("server.log")});
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> line =
        (*server)->ReadLineContaining("tda-server listening on ", 120);
    ASSERT_TRUE(line.ok()) << line.status();
    server_ = server->release();
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        line->substr(line->rfind(' ') + 1), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    delete server_;  // SIGKILL: the log is read by the tests themselves
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(channel_, nullptr);
    stub_ = v1::AttributionService::NewStub(*channel_);
  }

  // The call log lines written so far (server/call_log.h).
  static std::vector<nlohmann::json> CallLog() {
    std::vector<nlohmann::json> calls;
    std::istringstream lines(testing::ReadText(dir_->file("server.log")));
    for (std::string text; std::getline(lines, text);) {
      if (text.rfind("{\"call_log\"", 0) == 0) calls.push_back(nlohmann::json::parse(text));
    }
    return calls;
  }

  static testing::TempDir* dir_;
  static ChildProcess* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
  std::unique_ptr<v1::AttributionService::Stub> stub_;
};

testing::TempDir* QueryBatchingTest::dir_ = nullptr;
ChildProcess* QueryBatchingTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* QueryBatchingTest::channel_ = nullptr;

TEST_F(QueryBatchingTest, BurstAnswersEachCallerAsAloneAndKeepsOptionsApart) {
  // Options A: EK-FAC, top 5, per-document totals; one caller's second query is raw input.
  v1::AttributeRequest a1 = Request({TestId(0)}, 5, v1::METHOD_EKFAC);
  v1::AttributeRequest a2 = Request({TestId(1)}, 5, v1::METHOD_EKFAC);
  v1::Query* raw = a2.add_queries();
  const Dataset& test = testing::FashionTest(8);
  raw->mutable_raw()->mutable_features()->Add(test.row(7), test.row(7) + test.feature_dim);
  raw->set_label(3);
  v1::AttributeRequest a3 = Request({TestId(2), TestId(3)}, 5, v1::METHOD_EKFAC);
  std::vector<std::string> eight;
  for (int i = 10; i < 10 + kMaxBatch; ++i) eight.push_back(TestId(i));
  v1::AttributeRequest big = Request(eight, 5, v1::METHOD_EKFAC);
  for (v1::AttributeRequest* r : {&a1, &a2, &a3, &big}) r->set_group_by_document(true);
  // Options B: gradient-dot, top 3, every row's score; the last caller names an unknown id.
  v1::AttributeRequest b1 = Request({TestId(4)}, 3, v1::METHOD_GRADIENT_DOT);
  v1::AttributeRequest b2 = Request({TestId(5), TestId(6)}, 3, v1::METHOD_GRADIENT_DOT);
  v1::AttributeRequest bad =
      Request({TestId(7), "fashion-mnist/test/123456"}, 3, v1::METHOD_GRADIENT_DOT);
  for (v1::AttributeRequest* r : {&b1, &b2, &bad}) r->set_return_scores(true);
  const std::vector<v1::AttributeRequest> requests = {a1, a2, a3, big, b1, b2, bad};

  std::vector<v1::AttributeResponse> alone;
  for (const v1::AttributeRequest& request : requests) {
    Call call(stub_.get(), request);
    if (&request == &requests.back()) {
      EXPECT_EQ(call.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    } else {
      ASSERT_TRUE(call.status().ok()) << call.status().error_message();
      EXPECT_EQ(call.batch_queries(), request.queries_size());  // nothing to share with
    }
    alone.push_back(call.response());
  }

  std::vector<std::unique_ptr<Call>> burst;
  for (const v1::AttributeRequest& request : requests) {
    burst.push_back(std::make_unique<Call>(stub_.get(), request));
  }
  for (size_t c = 0; c + 1 < requests.size(); ++c) {
    SCOPED_TRACE(c);
    ASSERT_TRUE(burst[c]->status().ok()) << burst[c]->status().error_message();
    ExpectSameAnswer(alone[c], burst[c]->response());
  }
  EXPECT_EQ(burst[1]->response().results(1).query_id(), "raw:1");
  // a1 + a2 + a3 in one batch (5 queries), never with B's; `big` alone.
  for (int c : {0, 1, 2}) EXPECT_EQ(burst[c]->batch_queries(), 5) << c;
  EXPECT_EQ(burst[3]->batch_queries(), kMaxBatch);
  // B's combined call failed on `bad`'s query, so each member was rerun alone.
  EXPECT_EQ(burst[4]->batch_queries(), 1);
  EXPECT_EQ(burst[5]->batch_queries(), 2);
  EXPECT_EQ(burst.back()->status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(burst.back()->status().error_message(),
              HasSubstr("unknown sample id 'fashion-mnist/test/123456'"));
  EXPECT_EQ(burst.back()->batch_queries(), 2);  // rerun alone

  // The call log says the same of every call (one line each, written before the reply).
  int batched_lines = 0;
  for (const nlohmann::json& call : CallLog()) {
    if (call.value("batch_queries", 0) == 5) {
      EXPECT_LT(call.at("queries").get<int>(), 5);
      ++batched_lines;
    }
  }
  EXPECT_EQ(batched_lines, 3) << testing::ReadText(dir_->file("server.log"));
}

TEST_F(QueryBatchingTest, MembersThatGiveUpLeaveAtOnceAndTheRestIsAnswered) {
  const v1::AttributeRequest request = Request({TestId(20)}, 4, v1::METHOD_KFAC);
  Call reference(stub_.get(), request);
  ASSERT_TRUE(reference.status().ok()) << reference.status().error_message();

  // Three callers join one batch, which waits 200 ms for more: one's deadline passes after
  // 40 ms, another cancels after 40 ms; both must return long before the batch runs.
  Call stays(stub_.get(), request);
  Call deadlined(stub_.get(), Request({TestId(21)}, 4, v1::METHOD_KFAC),
                 std::chrono::milliseconds(40));
  Call cancelled(stub_.get(), Request({TestId(22)}, 4, v1::METHOD_KFAC), std::nullopt,
                 std::chrono::milliseconds(40));
  EXPECT_EQ(deadlined.status().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << deadlined.status().error_message();
  EXPECT_EQ(cancelled.status().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(deadlined.ms(), 150);
  EXPECT_LT(cancelled.ms(), 150);
  ASSERT_TRUE(stays.status().ok()) << stays.status().error_message();
  EXPECT_EQ(stays.batch_queries(), 1);  // the others left before the batch ran
  ExpectSameAnswer(reference.response(), stays.response());
}

}  // namespace
}  // namespace tda
