// Request conversion (api/api_conversion) and request validation (attribution/query_validation):
// what tda-server does with an AttributeRequest before any index is touched, and the round trip
// the client relies on. The fuzzer (tests/fuzz/request_fuzz.cc) checks the same properties on
// random bytes; these tests pin the messages and the edge cases.
#include "api/api_conversion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "api/status_conversion.h"
#include "attribution/query_validation.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

struct Converted {
  absl::Status status;
  std::vector<Query> queries;
  AttributeOptions options;
};

Converted Convert(const v1::AttributeRequest& request) {
  Converted out;
  out.status = AttributeRequestFromProto(request, &out.queries, &out.options);
  return out;
}

absl::Status ConvertAndValidate(const v1::AttributeRequest& request) {
  Converted c = Convert(request);
  if (!c.status.ok()) return c.status;
  return ValidateAttributeRequest(c.queries, c.options);
}

TEST(ApiConversionTest, RequestRoundTripsEveryKindOfQueryAndOption) {
  Query by_id{"fashion-mnist/test/12", {}, -1, {}};
  Query raw{"", std::vector<float>(784, 0.5f), 3, {}};
  Query text;
  text.text = TextQuery{"Q:\tWhat is a computer?\nA:\t", "A machine."};
  AttributeOptions options;
  options.top_k = 17;
  options.method = Method::kKfac;
  options.damping = Damping{0.0, 2.5};
  options.return_scores = true;
  options.token_scores = true;
  options.group_by_document = true;

  Converted c = Convert(AttributeRequestToProto({by_id, raw, text}, options));
  TDA_ASSERT_OK(c.status);
  ASSERT_EQ(c.queries.size(), 3u);
  EXPECT_EQ(c.queries[0].sample_id, "fashion-mnist/test/12");
  EXPECT_EQ(c.queries[0].label, -1);
  EXPECT_EQ(c.queries[1].features, raw.features);
  EXPECT_EQ(c.queries[1].label, 3);
  ASSERT_TRUE(c.queries[2].text.has_value());
  EXPECT_EQ(c.queries[2].text->prompt, text.text->prompt);
  EXPECT_EQ(c.queries[2].text->completion, "A machine.");
  EXPECT_EQ(c.options.top_k, 17);
  EXPECT_EQ(c.options.method, Method::kKfac);
  ASSERT_TRUE(c.options.damping.has_value());
  EXPECT_EQ(c.options.damping->absolute, 2.5);
  EXPECT_TRUE(c.options.return_scores);
  EXPECT_TRUE(c.options.token_scores);
  EXPECT_TRUE(c.options.group_by_document);
  EXPECT_TRUE(ValidateAttributeRequest(c.queries, c.options).ok());
}

TEST(ApiConversionTest, DefaultsAreTopTenEkfacAndTheIndexDamping) {
  v1::AttributeRequest request;
  request.add_queries()->set_sample_id("fashion-mnist/test/0");
  Converted c = Convert(request);
  TDA_ASSERT_OK(c.status);
  EXPECT_EQ(c.options.top_k, kDefaultTopK);
  EXPECT_EQ(c.options.method, Method::kEkfac);
  EXPECT_FALSE(c.options.damping.has_value());
}

// LiSSA's parameters and the curvature go to the server as the client set them; a request
// without them gets LissaOptions' defaults (estimated scale, Gauss-Newton, tolerance stop).
TEST(ApiConversionTest, LissaParametersAndCurvatureRoundTrip) {
  AttributeOptions options;
  options.method = Method::kLissa;
  options.lissa.scale = 42.5;
  options.lissa.depth = 321;
  options.lissa.tolerance = 0;
  options.lissa.repeats = 3;
  options.lissa.batch_size = 0;
  options.lissa.curvature = Curvature::kHessian;
  options.exact_curvature = Curvature::kHessian;
  const std::vector<Query> queries = {{"fashion-mnist/test/0", {}, -1, {}}};
  Converted c = Convert(AttributeRequestToProto(queries, options));
  TDA_ASSERT_OK(c.status);
  EXPECT_EQ(c.options.lissa.scale, 42.5);
  EXPECT_EQ(c.options.lissa.depth, 321);
  EXPECT_EQ(c.options.lissa.tolerance, 0);
  EXPECT_EQ(c.options.lissa.repeats, 3);
  EXPECT_EQ(c.options.lissa.batch_size, 0);
  EXPECT_EQ(c.options.lissa.curvature, Curvature::kHessian);
  EXPECT_EQ(c.options.exact_curvature, Curvature::kHessian);

  v1::AttributeRequest plain;
  plain.add_queries()->set_sample_id("fashion-mnist/test/0");
  plain.set_method(v1::METHOD_LISSA);
  Converted d = Convert(plain);
  TDA_ASSERT_OK(d.status);
  const LissaOptions defaults;
  EXPECT_EQ(d.options.lissa.scale, 0) << "0: estimated by power iteration";
  EXPECT_EQ(d.options.lissa.depth, defaults.depth);
  EXPECT_EQ(d.options.lissa.tolerance, defaults.tolerance);
  EXPECT_EQ(d.options.lissa.curvature, Curvature::kGaussNewton);

  // Out-of-range parameters are refused with the request, before it may wait for a slot.
  TDA_ASSERT_OK(ValidateAttributeRequest(d.queries, d.options));
  plain.mutable_lissa()->set_depth(0);
  Converted zero_depth = Convert(plain);
  TDA_ASSERT_OK(zero_depth.status);
  EXPECT_THAT(ValidateAttributeRequest(zero_depth.queries, zero_depth.options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LiSSA depth")));
  plain.mutable_lissa()->clear_depth();
  plain.mutable_lissa()->set_scale(-1);
  Converted negative_scale = Convert(plain);
  TDA_ASSERT_OK(negative_scale.status);
  EXPECT_THAT(ValidateAttributeRequest(negative_scale.queries, negative_scale.options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale")));
  plain.set_curvature(static_cast<v1::Curvature>(7));
  EXPECT_THAT(Convert(plain).status,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown curvature 7")));
}

TEST(ApiConversionTest, ApproximateSearchRoundTripsAndRefusesWhatNeedsEveryRow) {
  AttributeOptions options;
  options.top_k = 5;
  options.approximate = {true, 12, 300, 50};
  Converted c = Convert(AttributeRequestToProto({{"fashion-mnist/test/1", {}, -1, {}}}, options));
  TDA_ASSERT_OK(c.status);
  EXPECT_TRUE(c.options.approximate.enabled);
  EXPECT_EQ(c.options.approximate.nprobe, 12);
  EXPECT_EQ(c.options.approximate.ef_search, 300);
  EXPECT_EQ(c.options.approximate.candidates, 50);
  TDA_ASSERT_OK(ValidateAttributeRequest(c.queries, c.options));
  EXPECT_FALSE(Convert(AttributeRequestToProto(c.queries, AttributeOptions{}))
                   .options.approximate.enabled);

  c.options.group_by_document = true;
  EXPECT_THAT(ValidateAttributeRequest(c.queries, c.options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("group_by_document")));
  c.options.group_by_document = false;
  c.options.approximate.candidates = 4;  // fewer than top_k
  EXPECT_THAT(ValidateAttributeRequest(c.queries, c.options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("candidates must be in")));
  c.options.approximate.candidates = 0;
  c.options.approximate.nprobe = -1;
  EXPECT_THAT(ValidateAttributeRequest(c.queries, c.options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nprobe")));
}

TEST(ApiConversionTest, ConversionRefusesWhatTheEngineCannotExpress) {
  v1::AttributeRequest no_input;
  no_input.add_queries();
  EXPECT_THAT(Convert(no_input).status,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query 0: set sample_id")));

  v1::AttributeRequest empty_id;
  empty_id.add_queries()->set_sample_id("");
  EXPECT_THAT(Convert(empty_id).status,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sample_id is empty")));

  v1::AttributeRequest negative_label;
  v1::Query* q = negative_label.add_queries();
  q->set_sample_id("fashion-mnist/test/0");
  q->set_label(-4);
  EXPECT_THAT(Convert(negative_label).status, StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("label must be >= 0, got -4")));

  v1::AttributeRequest unknown_method;
  unknown_method.add_queries()->set_sample_id("fashion-mnist/test/0");
  unknown_method.set_method(static_cast<v1::Method>(99));
  EXPECT_THAT(Convert(unknown_method).status, StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("unknown method enum value 99")));
}

TEST(ApiConversionTest, ValidationNamesTheOffendingQueryOrOption) {
  auto request_with = [](auto edit) {
    v1::AttributeRequest request;
    request.add_queries()->set_sample_id("fashion-mnist/test/0");
    edit(request);
    return request;
  };
  EXPECT_THAT(ConvertAndValidate(v1::AttributeRequest{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no queries given")));
  EXPECT_THAT(ConvertAndValidate(request_with([](v1::AttributeRequest& r) { r.set_top_k(0); })),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("top_k must be in [1, 10000], got 0")));
  EXPECT_THAT(ConvertAndValidate(request_with([](v1::AttributeRequest& r) { r.set_top_k(10001); })),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 10001")));
  EXPECT_TRUE(
      ConvertAndValidate(request_with([](v1::AttributeRequest& r) { r.set_top_k(10000); })).ok());
  EXPECT_THAT(
      ConvertAndValidate(request_with([](v1::AttributeRequest& r) {
        for (int i = 0; i < kMaxQueriesPerRequest; ++i) r.add_queries()->set_sample_id("x");
      })),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1025 queries in one request")));
  EXPECT_THAT(ConvertAndValidate(request_with(
                  [](v1::AttributeRequest& r) { r.mutable_damping()->set_relative(-1); })),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("relative damping must be")));
  EXPECT_THAT(ConvertAndValidate(request_with([](v1::AttributeRequest& r) {
                r.mutable_damping()->set_absolute(std::numeric_limits<double>::infinity());
              })),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("absolute damping must be")));
  EXPECT_THAT(
      ConvertAndValidate(request_with([](v1::AttributeRequest& r) {
        v1::Query* q = r.add_queries();
        q->mutable_raw()->add_features(1.0f);
        q->mutable_raw()->add_features(std::nanf(""));
        q->set_label(1);
      })),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query 1: feature 1 is not finite")));
  EXPECT_THAT(ConvertAndValidate(request_with([](v1::AttributeRequest& r) {
                r.add_queries()->mutable_raw();  // raw input with no features
              })),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query 1: no input")));
  EXPECT_THAT(
      ConvertAndValidate(request_with(
          [](v1::AttributeRequest& r) { r.add_queries()->mutable_text()->set_prompt("Q: why?"); })),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query 1: the completion is empty")));
}

TEST(ApiConversionTest, ResponsesRoundTripHitsScoresSourceAndDocumentTotals) {
  QueryResult result;
  result.query_id = "fashion-mnist/test/12";
  result.label = 9;
  result.proponents.push_back(
      Hit{7, "fashion-mnist/train/7", "fashion-mnist/train", 9, 2.5, "", std::nullopt, "", {}});
  result.opponents.push_back(
      Hit{9, "fashion-mnist/train/9", "fashion-mnist/train", 1, -1.5, "", std::nullopt, "", {}});
  result.scores = {2.5f, std::numeric_limits<float>::quiet_NaN(), -1.5f};
  result.source_totals.push_back(SourceTotal{"fashion-mnist/train", 1.0, 2});
  result.proponent_documents.push_back(
      DocumentTotal{"fortunes/art/3", "art", 16, 409.63, 4, "fortunes/art/3#4", 54.367});
  result.opponent_documents.push_back(
      DocumentTotal{"fortunes/art/57", "art", 5, -151.69, 9, "fortunes/art/57#2", -65.694});
  const std::vector<QueryResult> back =
      AttributeResponseFromProto(AttributeResponseToProto({result}, Method::kEkfac, 3));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].query_id, result.query_id);
  EXPECT_EQ(back[0].label, 9);
  ASSERT_EQ(back[0].proponents.size(), 1u);
  EXPECT_EQ(back[0].proponents[0].id, "fashion-mnist/train/7");
  EXPECT_EQ(back[0].proponents[0].score, 2.5);
  ASSERT_EQ(back[0].opponents.size(), 1u);
  EXPECT_EQ(back[0].opponents[0].score, -1.5);
  ASSERT_EQ(back[0].scores.size(), 3u);
  EXPECT_TRUE(std::isnan(back[0].scores[1]));
  ASSERT_EQ(back[0].source_totals.size(), 1u);
  EXPECT_EQ(back[0].source_totals[0].count, 2);
  ASSERT_EQ(back[0].proponent_documents.size(), 1u);
  const DocumentTotal& d = back[0].proponent_documents[0];
  EXPECT_EQ(d.document_id, "fortunes/art/3");
  EXPECT_EQ(d.source, "art");
  EXPECT_EQ(d.chunks, 16);
  EXPECT_EQ(d.sum, 409.63);
  EXPECT_EQ(d.best_row, 4);
  EXPECT_EQ(d.best_row_id, "fortunes/art/3#4");
  EXPECT_EQ(d.best_score, 54.367);
  ASSERT_EQ(back[0].opponent_documents.size(), 1u);
  EXPECT_EQ(back[0].opponent_documents[0].sum, -151.69);
}

TEST(ApiConversionTest, StatusCodesMapBothWays) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kDeadlineExceeded,
        absl::StatusCode::kCancelled, absl::StatusCode::kDataLoss,
        absl::StatusCode::kFailedPrecondition, absl::StatusCode::kUnavailable}) {
    const absl::Status status(code, "the message");
    const absl::Status back = FromGrpcStatus(ToGrpcStatus(status));
    EXPECT_EQ(back.code(), code);
    EXPECT_THAT(std::string(back.message()), HasSubstr("the message"));
  }
}

}  // namespace
}  // namespace tda
