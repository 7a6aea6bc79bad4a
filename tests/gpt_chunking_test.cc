// Long documents chunked into index rows, on the real fortunes: the rows each document gives at a
// small context and stride; a chunk-like document id refused with its file and line; and, on a
// byte-level GPT trained for real, a distinctive passage planted in the middle of a long document
// (real fortunes joined) makes the chunk holding it the top proponent of a completion quoted from
// it and the document the top document, whose score is exactly the sum of its chunks' scores.
// Self-influence per document is the quadratic form of the summed chunk rows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "attribution/attributor.h"
#include "data/byte_tokenizer.h"
#include "data/chunking.h"
#include "data/fortunes.h"
#include "data/jsonl_corpus.h"
#include "model/recipe_data.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

// Rows a document of n bytes gives (n + 1 prediction positions), counted independently of
// ChunkWindows: one when it fits, else one per stride until a window reaches the end.
int64_t ExpectedRows(int64_t n, int64_t context, int64_t stride) {
  const int64_t positions = n + 1;
  if (positions <= context) return 1;
  return 1 + (positions - context + stride - 1) / stride;
}

TEST(ChunkedFortunesTest, EveryDocumentGivesTheExpectedRows) {
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(kFortunesDefaultDir);
  TDA_ASSERT_OK(docs);
  constexpr int64_t kContext = 64;
  for (int64_t stride : {kContext, int64_t{24}}) {
    TextSplitOptions options;
    options.context_length = kContext;
    options.chunk_stride = stride;
    int64_t truncated = -1;
    absl::StatusOr<Dataset> train =
        LoadFortunes(kFortunesDefaultDir, Split::kTrain, options, &truncated);
    TDA_ASSERT_OK(train);
    EXPECT_EQ(truncated, 0) << "chunking cuts nothing";
    int64_t row = 0, long_documents = 0;
    for (const TextDocument& doc : *docs) {
      if (IsHeldOut(doc.id, options.split_seed, options.held_out_fraction)) continue;
      const int64_t n = static_cast<int64_t>(doc.text.size());
      const int64_t rows = ExpectedRows(n, kContext, stride);
      ASSERT_LE(row + rows, train->size());
      long_documents += rows > 1;
      std::string text;  // the non-overlapping chunks' previews, joined
      for (int64_t k = 0; k < rows; ++k, ++row) {
        ASSERT_EQ(train->ids[row], rows == 1 ? doc.id : absl::StrCat(doc.id, "#", k));
        ASSERT_EQ(train->sources[row], doc.source);
        if (rows > 1) {
          ASSERT_EQ(train->previews[row], doc.text.substr(k * stride, kContext));
        }
        if (rows > 1 && stride == kContext) text += train->previews[row];
      }
      if (rows > 1 && stride == kContext) {
        ASSERT_EQ(text, doc.text);
      }
    }
    EXPECT_EQ(row, train->size());
    std::printf(
        "context %lld, stride %lld: %lld rows, %lld documents longer "
        "than the context\n",
        static_cast<long long>(kContext), static_cast<long long>(stride),
        static_cast<long long>(train->size()), static_cast<long long>(long_documents));
    EXPECT_GT(long_documents, 1000) << "the real fortunes have many documents over 64 bytes";

    // `limit` counts rows, as the trainer's train_size does: the first rows of the whole split.
    options.limit = 1001;
    absl::StatusOr<Dataset> head = LoadFortunes(kFortunesDefaultDir, Split::kTrain, options);
    TDA_ASSERT_OK(head);
    ASSERT_EQ(head->size(), 1001);
    EXPECT_EQ(head->ids.back(), train->ids[1000]);
    EXPECT_TRUE(std::equal(head->targets.begin(), head->targets.end(), train->targets.begin()));
  }
  // Stride 0 is truncation, one row per document, as models trained before chunking.
  TextSplitOptions options;
  options.context_length = kContext;
  int64_t truncated = 0;
  absl::StatusOr<Dataset> cut =
      LoadFortunes(kFortunesDefaultDir, Split::kTrain, options, &truncated);
  TDA_ASSERT_OK(cut);
  EXPECT_GT(truncated, 1000);
  for (const std::string& id : cut->ids) ASSERT_FALSE(LooksLikeChunkId(id)) << id;
}

TEST(ChunkedFortunesTest, ChunkLikeIdIsRefusedWithItsFileAndLine) {
  testing::TempDir dir;
  const std::string path = dir.file("notes.jsonl");
  testing::WriteText(path,
                     "{\"id\": \"notes/1\", \"text\": \"A fortune.\"}\n"
                     "{\"id\": \"notes#2\", \"text\": \"Another fortune.\"}\n");
  JsonlOptions jsonl;
  jsonl.paths = {path};
  TextSplitOptions options;
  options.context_length = 64;
  options.held_out_fraction = 0;
  options.chunk_stride = 64;
  EXPECT_THAT(LoadJsonl(jsonl, Split::kTrain, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path + ":2"), HasSubstr("'notes#2'"),
                             HasSubstr("--chunk-stride 0"))));
  options.chunk_stride = 0;  // truncation: ids are rows, nothing to tell apart
  absl::StatusOr<Dataset> rows = LoadJsonl(jsonl, Split::kTrain, options);
  TDA_ASSERT_OK(rows);
  EXPECT_EQ(rows->ids[1], "notes#2");
}

constexpr char kPassage[] = "Zorblax the quantum hamster juggles violet teapots at dawn.\n";
constexpr int64_t kContext = 64;

TEST(GptChunking, PlantedPassageChunkIsTheTopProponentAndItsDocumentTheTopDocument) {
  testing::TempDir dir;
  std::vector<TextDocument> docs;
  for (const char* category : {"riddles", "startrek"}) {
    const std::string copy = dir.file(category);
    std::filesystem::create_directories(copy);
    std::filesystem::copy_file(std::string(kFortunesDefaultDir) + "/" + category,
                               copy + "/" + category);
    absl::StatusOr<std::vector<TextDocument>> read = ReadFortunes(copy);
    TDA_ASSERT_OK(read);
    docs.insert(docs.end(), read->begin(), read->end());
  }
  // The long document: real fortunes joined, cut to 5 windows, the passage (one window's worth at
  // most), then more real fortunes: the passage is exactly chunk 5 of the document.
  std::string before, after;
  size_t next = 0;
  while (before.size() < 5 * kContext) before += docs[next++].text;
  before.resize(5 * kContext);
  while (after.size() < 6 * kContext) after += docs[next++].text;
  ASSERT_LE(sizeof(kPassage) - 1, static_cast<size_t>(kContext));
  const std::string passage(kPassage);
  const std::string padded = passage + std::string(kContext - passage.size(), ' ');
  TextDocument long_doc{"essays/long", "essays", before + padded + after, 0};
  ASSERT_FALSE(IsHeldOut(long_doc.id, 0, 0.05)) << "the long document must be a training row";
  docs.insert(docs.begin() + static_cast<std::ptrdiff_t>(docs.size() / 2), long_doc);
  const std::string jsonl = dir.file("corpus.jsonl");
  TDA_ASSERT_OK(WriteJsonl(docs, jsonl));

  const ModelConfig config = GptConfig(kContext, /*d_model=*/32, /*layers=*/1, /*heads=*/2,
                                       /*mlp_width=*/64, /*tied_head=*/false);
  TrainRecipe recipe;
  recipe.dataset = "jsonl";
  recipe.data_dir = jsonl;
  recipe.chunk_stride = kContext;
  absl::StatusOr<std::string> hash = JsonlCorpusHash({jsonl});
  TDA_ASSERT_OK(hash);
  recipe.corpus_hash = *hash;
  absl::StatusOr<Dataset> train = LoadRecipeData(config, recipe, Split::kTrain);
  TDA_ASSERT_OK(train);
  const int64_t long_rows =
      ExpectedRows(static_cast<int64_t>(long_doc.text.size()), kContext, kContext);
  const std::string planted_chunk = "essays/long#5";
  ASSERT_NE(std::find(train->ids.begin(), train->ids.end(), planted_chunk), train->ids.end());

  TrainRecipe trained;
  std::unique_ptr<Model> model = testing::TrainTinyGpt(config, *train, /*epochs=*/4, 0, &trained);
  ASSERT_NE(model, nullptr);
  trained.dataset = recipe.dataset;
  trained.data_dir = recipe.data_dir;
  trained.chunk_stride = recipe.chunk_stride;
  trained.corpus_hash = recipe.corpus_hash;
  std::unique_ptr<Attributor> attributor =
      testing::IndexWithRecipe(*model, trained, dir.path(), "chunked");
  ASSERT_NE(attributor, nullptr);
  ASSERT_EQ(attributor->index().rows(), train->size());

  Query query;
  query.text = TextQuery{passage.substr(0, 16), passage.substr(16, 36)};
  AttributeOptions options;
  options.top_k = 5;
  options.token_scores = true;
  options.return_scores = true;
  options.group_by_document = true;
  absl::StatusOr<std::vector<QueryResult>> results = attributor->Attribute({query}, options);
  TDA_ASSERT_OK(results);
  const QueryResult& result = (*results)[0];
  for (const Hit& hit : result.proponents) {
    std::printf("%-22s %+.4e verbatim %lld B  %s\n", hit.id.c_str(), hit.score,
                static_cast<long long>(hit.shared_span ? hit.shared_span->length : -1),
                OneLinePreview(hit.preview, 40).c_str());
  }
  for (const DocumentTotal& d : result.proponent_documents) {
    std::printf("document %-18s %lld chunks, sum %+.4e, best %s %+.4e\n", d.document_id.c_str(),
                static_cast<long long>(d.chunks), d.sum, d.best_row_id.c_str(), d.best_score);
  }
  ASSERT_FALSE(result.proponents.empty());
  const Hit& top = result.proponents[0];
  EXPECT_EQ(top.id, planted_chunk);
  EXPECT_EQ(top.source, "essays");
  // The chunk's own window text: the verbatim check and the per-token scores use it.
  ASSERT_TRUE(top.shared_span.has_value());
  EXPECT_EQ(top.shared_span->length, 36) << "the whole completion is quoted from the chunk";
  EXPECT_EQ(top.shared_span->document_offset, 16);
  EXPECT_EQ(top.text, padded);
  double token_sum = 0;
  for (float s : top.token_scores) token_sum += s;
  EXPECT_NEAR(token_sum, top.score, 1e-3 * std::abs(top.score));

  ASSERT_FALSE(result.proponent_documents.empty());
  const DocumentTotal& best = result.proponent_documents[0];
  EXPECT_EQ(best.document_id, "essays/long");
  EXPECT_EQ(best.source, "essays");
  EXPECT_EQ(best.chunks, long_rows);
  EXPECT_EQ(best.best_row_id, planted_chunk);
  // Every listed document's total is exactly the sum of its rows' scores (row order, double).
  const GradientIndex& index = attributor->index();
  for (const auto* list : {&result.proponent_documents, &result.opponent_documents}) {
    for (const DocumentTotal& d : *list) {
      double sum = 0;
      int64_t chunks = 0;
      for (int64_t r = 0; r < index.rows(); ++r) {
        if (DocumentOfRow(index.sample(r).id) != d.document_id) continue;
        sum += result.scores[r];
        ++chunks;
      }
      EXPECT_EQ(d.sum, sum) << d.document_id;
      EXPECT_EQ(d.chunks, chunks) << d.document_id;
    }
  }

  // Self-influence per document with gradient-dot (no curvature): |sum of its rows|^2, exactly the
  // quadratic form of the summed stored rows; a one-row document keeps its row's value.
  AttributeOptions dot;
  dot.method = Method::kGradientDot;
  absl::StatusOr<Eigen::VectorXd> per_row = attributor->SelfInfluence(dot);
  absl::StatusOr<Eigen::VectorXd> per_document = attributor->DocumentSelfInfluence(dot);
  TDA_ASSERT_OK(per_row);
  TDA_ASSERT_OK(per_document);
  const IndexDocuments& documents = attributor->documents();
  ASSERT_EQ(per_document->size(), documents.size());
  Eigen::VectorXf row(index.dim());
  int64_t rows_seen = 0;
  for (int64_t d = 0; d < documents.size(); ++d) {
    const std::vector<int64_t> rows = documents.live_rows(d);
    rows_seen += static_cast<int64_t>(rows.size());
    if (documents.id(d) == "essays/long") {
      EXPECT_EQ(static_cast<int64_t>(rows.size()), long_rows);
    }
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(index.dim());
    for (int64_t r : rows) {
      index.CopyRow(r, row.data());
      sum += row.cast<double>();
    }
    ASSERT_NEAR((*per_document)[d], sum.squaredNorm(), 1e-9 * sum.squaredNorm()) << documents.id(d);
    if (rows.size() == 1) {
      ASSERT_EQ((*per_document)[d], (*per_row)[rows[0]]) << documents.id(d);
    }
  }
  EXPECT_EQ(rows_seen, index.rows());
}

}  // namespace
}  // namespace tda
