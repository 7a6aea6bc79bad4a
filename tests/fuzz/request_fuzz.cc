// libFuzzer target for the request path of tda-server and the reply path of the client: bytes
// -> protobuf parse -> api/api_conversion -> attribution/query_validation, the code every
// Attribute call runs before it reaches an index.
//
// Input layout: the first byte picks the message (mod 3), the rest is its wire encoding:
//   0  tda.v1.AttributeRequest   AttributeRequestFromProto, then ValidateAttributeRequest
//   1  tda.v1.AttributeResponse  AttributeResponseFromProto (what the CLI does with a reply)
//   2  tda.v1.GetSampleResponse  SampleFromProto
//
// Properties checked beyond "no crash, no leak, no sanitizer report":
//   - a request that converts survives AttributeRequestToProto -> AttributeRequestFromProto
//     unchanged (ids, features bit for bit, labels, text, top_k, method, damping, switches);
//   - a request that validates has 1..kMaxQueriesPerRequest queries, top_k in [1, kMaxTopK],
//     finite features, and exactly one input per query;
//   - a reply survives AttributeResponseFromProto -> AttributeResponseToProto -> FromProto with
//     the same hits, scores and source totals.
//
// With TDA_FUZZ_WRITE_SEEDS=DIR set, LLVMFuzzerInitialize writes seed inputs into DIR: real
// requests (id, raw features, text, damping, too many queries) and replies.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "api/api_conversion.h"
#include "attribution/query_validation.h"
#include "tda/v1/attribution.pb.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "request_fuzz: property violated: %s\n", what);
  std::abort();
}

bool SameFeatures(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool SameQuery(const tda::Query& a, const tda::Query& b) {
  if (a.sample_id != b.sample_id || a.label != b.label || !SameFeatures(a.features, b.features)) {
    return false;
  }
  if (a.text.has_value() != b.text.has_value()) return false;
  return !a.text.has_value() ||
         (a.text->prompt == b.text->prompt && a.text->completion == b.text->completion);
}

bool SameOptions(const tda::AttributeOptions& a, const tda::AttributeOptions& b) {
  if (a.top_k != b.top_k || a.method != b.method || a.return_scores != b.return_scores ||
      a.token_scores != b.token_scores || a.damping.has_value() != b.damping.has_value()) {
    return false;
  }
  if (!a.damping.has_value()) return true;
  auto same = [](double x, double y) { return std::memcmp(&x, &y, sizeof(double)) == 0; };
  if (a.damping->absolute.has_value() != b.damping->absolute.has_value()) return false;
  return a.damping->absolute.has_value() ? same(*a.damping->absolute, *b.damping->absolute)
                                         : same(a.damping->relative, b.damping->relative);
}

void FuzzRequest(const tda::v1::AttributeRequest& request) {
  std::vector<tda::Query> queries;
  tda::AttributeOptions options;
  if (!tda::AttributeRequestFromProto(request, &queries, &options).ok()) return;
  std::vector<tda::Query> again;
  tda::AttributeOptions again_options;
  if (!tda::AttributeRequestFromProto(tda::AttributeRequestToProto(queries, options), &again,
                                      &again_options)
           .ok()) {
    Fail("a converted request does not convert back");
  }
  if (again.size() != queries.size() || !SameOptions(options, again_options)) {
    Fail("request options changed in a round trip");
  }
  for (size_t q = 0; q < queries.size(); ++q) {
    if (!SameQuery(queries[q], again[q])) Fail("a query changed in a round trip");
  }
  if (!tda::ValidateAttributeRequest(queries, options).ok()) return;
  if (queries.empty() || static_cast<int64_t>(queries.size()) > tda::kMaxQueriesPerRequest) {
    Fail("a valid request has a bad number of queries");
  }
  if (options.top_k < 1 || options.top_k > tda::kMaxTopK) Fail("a valid request has a bad top_k");
  for (const tda::Query& query : queries) {
    const int inputs = !query.sample_id.empty() + query.text.has_value() + !query.features.empty();
    if (inputs != 1) Fail("a valid query has not exactly one input");
    for (float f : query.features) {
      if (!std::isfinite(f)) Fail("a valid query has a non-finite feature");
    }
  }
}

bool SameResults(const std::vector<tda::QueryResult>& a, const std::vector<tda::QueryResult>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].query_id != b[i].query_id || a[i].proponents.size() != b[i].proponents.size() ||
        a[i].opponents.size() != b[i].opponents.size() || !SameFeatures(a[i].scores, b[i].scores) ||
        a[i].source_totals.size() != b[i].source_totals.size()) {
      return false;
    }
    for (size_t h = 0; h < a[i].proponents.size(); ++h) {
      if (a[i].proponents[h].id != b[i].proponents[h].id ||
          a[i].proponents[h].row != b[i].proponents[h].row) {
        return false;
      }
    }
  }
  return true;
}

void FuzzResponse(const tda::v1::AttributeResponse& response) {
  const std::vector<tda::QueryResult> results = tda::AttributeResponseFromProto(response);
  const tda::v1::AttributeResponse again =
      tda::AttributeResponseToProto(results, tda::Method::kEkfac, response.index_rows());
  if (!SameResults(results, tda::AttributeResponseFromProto(again))) {
    Fail("a reply changed in a round trip");
  }
}

void WriteSeed(const std::string& dir, const std::string& name, char kind,
               const google::protobuf::MessageLite& message) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out << kind << message.SerializeAsString();
}

void WriteSeeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  tda::AttributeOptions options;
  options.top_k = 5;
  options.damping = tda::Damping{0.5, std::nullopt};
  options.return_scores = true;
  WriteSeed(dir, "request-id", 0,
            tda::AttributeRequestToProto({{"fashion-mnist/test/12", {}, -1, {}}}, options));
  std::vector<float> features(784, 0.25f);
  features[100] = std::nanf("");
  options.damping = tda::Damping{0.1, 3.0};
  options.method = tda::Method::kLissa;
  WriteSeed(dir, "request-raw", 0, tda::AttributeRequestToProto({{"", features, 3, {}}}, options));
  tda::Query text;
  text.text =
      tda::TextQuery{"Q:\tWhat do you call a boomerang that doesn't come back?\nA:\t", "A stick."};
  options = tda::AttributeOptions{};
  options.token_scores = true;
  WriteSeed(dir, "request-text", 0, tda::AttributeRequestToProto({text, text}, options));
  std::vector<tda::Query> many(tda::kMaxQueriesPerRequest + 1,
                               tda::Query{"fashion-mnist/train/3", {}, 1, {}});
  WriteSeed(dir, "request-many", 0, tda::AttributeRequestToProto(many, tda::AttributeOptions{}));

  tda::QueryResult result;
  result.query_id = "fashion-mnist/test/12";
  result.proponents.push_back(tda::Hit{
      7, "fashion-mnist/train/7", "fashion-mnist/train", 3, 2.5, "", std::nullopt, "", {}});
  result.opponents.push_back(tda::Hit{
      9, "fashion-mnist/train/9", "fashion-mnist/train", 1, -1.5, "", std::nullopt, "", {}});
  result.scores = {2.5f, std::nanf(""), -1.5f};
  result.source_totals.push_back(tda::SourceTotal{"fashion-mnist/train", 1.0, 2});
  WriteSeed(dir, "response", 1, tda::AttributeResponseToProto({result}, tda::Method::kEkfac, 3));
  tda::SampleData sample;
  sample.record.id = "fashion-mnist/train/7";
  sample.features = {0.0f, 1.0f};
  WriteSeed(dir, "sample", 2, tda::SampleToProto(sample, 7));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* corpus = std::getenv("TDA_FUZZ_WRITE_SEEDS")) WriteSeeds(corpus);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int kind = data[0] % 3;
  const void* body = data + 1;
  const int body_size = static_cast<int>(size - 1);
  if (kind == 0) {
    tda::v1::AttributeRequest request;
    if (request.ParseFromArray(body, body_size)) FuzzRequest(request);
  } else if (kind == 1) {
    tda::v1::AttributeResponse response;
    if (response.ParseFromArray(body, body_size)) FuzzResponse(response);
  } else {
    tda::v1::GetSampleResponse sample;
    if (sample.ParseFromArray(body, body_size)) (void)tda::SampleFromProto(sample);
  }
  return 0;
}
