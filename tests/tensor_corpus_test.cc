// `tensors` corpora (.npy classifier data): the reader's rows and defaults, every bad input
// with its message, and Fashion-MNIST exported to .npy giving the same rows, the same index
// bytes and the same answers as the IDX files read directly.
#include "data/tensor_corpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "attribution/attributor.h"
#include "common/npy.h"
#include "data/fashion_mnist.h"
#include "data/fashion_mnist_export.h"
#include "model/recipe_data.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

// A .npy file with any header (for dtypes, orders and shapes WriteNpy* do not write).
void WriteRawNpy(const std::string& path, const std::string& descr, bool fortran,
                 const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " +
                       (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  testing::WriteText(path, out + header + data);
}

class TensorCorpusTest : public ::testing::Test {
 protected:
  // 4 rows x 3 features, labels 0 1 2 1.
  void SetUp() override {
    files_.features = dir_.file("x.npy");
    files_.labels = dir_.file("y.npy");
    const std::vector<float> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const std::vector<int64_t> y = {0, 1, 2, 1};
    TDA_ASSERT_OK(WriteNpyF32(files_.features, {4, 3}, x.data()));
    TDA_ASSERT_OK(WriteNpyI64(files_.labels, {4}, y.data()));
  }
  absl::Status Load(Split split = Split::kTrain) {
    return LoadTensorCorpus(files_, split, 0, 0.0).status();
  }
  testing::TempDir dir_;
  TensorCorpusFiles files_;
};

TEST_F(TensorCorpusTest, ReadsRowsWithDefaultIdsSourcesAndClassNames) {
  absl::StatusOr<Dataset> data = LoadTensorCorpus(files_, Split::kTrain, 0, 0.0);
  TDA_ASSERT_OK(data);
  EXPECT_EQ(data->name, "x/train");
  EXPECT_EQ(data->size(), 4);
  EXPECT_EQ(data->feature_dim, 3);
  EXPECT_EQ(data->row(2)[1], 7.0f);
  EXPECT_EQ(data->labels, (std::vector<int32_t>{0, 1, 2, 1}));
  EXPECT_EQ(data->ids[3], "x/3");
  EXPECT_EQ(data->sources[0], "x");
  EXPECT_EQ(data->class_names, (std::vector<std::string>{"0", "1", "2"}));
  absl::StatusOr<Dataset> first = LoadTensorCorpus(files_, Split::kTrain, 2, 0.0);
  TDA_ASSERT_OK(first);
  EXPECT_EQ(first->ids, (std::vector<std::string>{"x/0", "x/1"}));
}

TEST_F(TensorCorpusTest, Float64AndUint8FeaturesAndInt32Labels) {
  const double d[] = {0.5, -1.25, 3, 4e10};
  WriteRawNpy(files_.features, "<f8", false, "(2, 2)", std::string(reinterpret_cast<const char*>(d), sizeof d));
  const int32_t y[] = {1, 0};
  WriteRawNpy(files_.labels, "<i4", false, "(2,)", std::string(reinterpret_cast<const char*>(y), sizeof y));
  absl::StatusOr<Dataset> data = LoadTensorCorpus(files_, Split::kTrain, 0, 0.0);
  TDA_ASSERT_OK(data);
  EXPECT_EQ(data->features, (std::vector<float>{0.5f, -1.25f, 3.0f, 4e10f}));
  EXPECT_EQ(data->labels, (std::vector<int32_t>{1, 0}));
  WriteRawNpy(files_.features, "|u1", false, "(2, 2)", std::string("\x00\xff\x07\x80", 4));
  data = LoadTensorCorpus(files_, Split::kTrain, 0, 0.0);
  TDA_ASSERT_OK(data);
  EXPECT_EQ(data->features, (std::vector<float>{0, 255, 7, 128})) << "uint8 is not scaled";
}

TEST_F(TensorCorpusTest, SidecarAndClassNamesAndHeldOutByIdHash) {
  files_.samples = dir_.file("samples.tsv");
  files_.class_names = dir_.file("names.json");
  testing::WriteText(files_.samples, "source\tid\textra\nweb\ta\t1\nweb\tb\t2\nbooks\tc\t3\nbooks\td\t4\n");
  testing::WriteText(files_.class_names, R"({"class_names": ["cat", "dog", "eel", "fox"]})");
  absl::StatusOr<Dataset> train = LoadTensorCorpus(files_, Split::kTrain, 0, 0.5);
  absl::StatusOr<Dataset> held = LoadTensorCorpus(files_, Split::kTest, 0, 0.5);
  TDA_ASSERT_OK(train);
  TDA_ASSERT_OK(held);
  EXPECT_EQ(train->size() + held->size(), 4);
  for (const Dataset* d : {&*train, &*held}) {
    for (int64_t i = 0; i < d->size(); ++i) {
      EXPECT_EQ(IsHeldOut(d->ids[i], 0, 0.5), d == &*held) << d->ids[i];
      EXPECT_EQ(d->sources[i], d->ids[i] < "c" ? "web" : "books");
    }
    EXPECT_EQ(d->class_names.size(), 4u);
  }
  files_.samples = dir_.file("samples.jsonl");
  testing::WriteText(files_.samples, "{\"id\": 7, \"source\": \"s\"}\n{\"id\": \"b\"}\n\n{\"id\": \"c\"}\n{\"id\": \"d\"}\n");
  absl::StatusOr<Dataset> jsonl = LoadTensorCorpus(files_, Split::kTrain, 0, 0.0);
  TDA_ASSERT_OK(jsonl);
  EXPECT_EQ(jsonl->ids[0], "7");
  EXPECT_EQ(jsonl->sources[0], "s");
  EXPECT_EQ(jsonl->sources[1], "x");
}

TEST_F(TensorCorpusTest, SpecRoundTripsAndRefusesMalformedSpecs) {
  files_.samples = "/d/s.tsv";
  files_.test_features = "/d/tx.npy";
  files_.test_labels = "/d/ty.npy";
  absl::StatusOr<std::string> spec = TensorCorpusSpec(files_);
  TDA_ASSERT_OK(spec);
  absl::StatusOr<TensorCorpusFiles> back = ParseTensorCorpusSpec(*spec);
  TDA_ASSERT_OK(back);
  EXPECT_EQ(back->features, files_.features);
  EXPECT_EQ(back->samples, "/d/s.tsv");
  EXPECT_EQ(back->test_labels, "/d/ty.npy");
  EXPECT_THAT(ParseTensorCorpusSpec("x.npy").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a features and a labels")));
  EXPECT_THAT(ParseTensorCorpusSpec("x.npy,y.npy,test-features=t.npy").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
  EXPECT_THAT(ParseTensorCorpusSpec("x.npy,y.npy,z.npy").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unexpected entry 'z.npy'")));
  files_.samples = "/d/a,b.tsv";
  EXPECT_THAT(TensorCorpusSpec(files_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contains ','")));
}

TEST_F(TensorCorpusTest, WrongDtypeShapeOrderAreRefusedNamingTheFile) {
  WriteRawNpy(files_.features, "<i4", false, "(2, 2)", std::string(16, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.features), HasSubstr("dtype i4"),
                                     HasSubstr("(2, 2)"), HasSubstr("expected float32"))));
  WriteRawNpy(files_.features, "<f4", false, "(4,)", std::string(16, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.features), HasSubstr("shape (4,)"),
                                     HasSubstr("expected a matrix of shape (N, D)"))));
  WriteRawNpy(files_.features, "<f4", true, "(2, 2)", std::string(16, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.features), HasSubstr("Fortran"))));
  WriteRawNpy(files_.features, "<f4", false, "(4, 3)", std::string(8, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.features), HasSubstr("needs 48"))));
  SetUp();
  WriteRawNpy(files_.labels, "<f4", false, "(4,)", std::string(16, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("dtype f4"),
                                     HasSubstr("expected int64"))));
  WriteRawNpy(files_.labels, "<i8", false, "(2, 2)", std::string(32, '\0'));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("shape (2, 2)"))));
  testing::WriteText(files_.labels, "not numpy");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("not a valid .npy"))));
}

TEST_F(TensorCorpusTest, MismatchedRowsAndBadLabelsNameTheRow) {
  const std::vector<int64_t> three = {0, 1, 2};
  TDA_ASSERT_OK(WriteNpyI64(files_.labels, {3}, three.data()));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("3 labels"),
                                     HasSubstr("has 4 rows"))));
  const int32_t negative[] = {0, 1, -1, 1};
  WriteRawNpy(files_.labels, "<i4", false, "(4,)",
              std::string(reinterpret_cast<const char*>(negative), sizeof negative));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("row 2: label -1"))));
  SetUp();
  files_.class_names = dir_.file("names.txt");
  testing::WriteText(files_.class_names, "cat\ndog\n");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.labels), HasSubstr("row 2: label 2"),
                                     HasSubstr("2 class names in " + files_.class_names))));
}

TEST_F(TensorCorpusTest, NonFiniteFeaturesNameRowAndColumn) {
  std::vector<float> x(12, 1.0f);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  TDA_ASSERT_OK(WriteNpyF32(files_.features, {4, 3}, x.data()));
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.features), HasSubstr("row 2, column 1 is NaN"))));
  x[7] = 1;
  x[11] = -std::numeric_limits<float>::infinity();
  TDA_ASSERT_OK(WriteNpyF32(files_.features, {4, 3}, x.data()));
  // Checked even in rows the split does not load.
  EXPECT_THAT(LoadTensorCorpus(files_, Split::kTrain, 1, 0.0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(files_.features), HasSubstr("row 3, column 2 is infinite"))));
}

TEST_F(TensorCorpusTest, BadSidecarsAndMissingFiles) {
  files_.samples = dir_.file("samples.tsv");
  testing::WriteText(files_.samples, "id\tsource\na\ts\nb\ts\nc\ts\n");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.samples), HasSubstr("3 sample records"),
                                     HasSubstr("4 rows"))));
  testing::WriteText(files_.samples, "id\tsource\na\ts\nb\ts\nc\ts\nb\ts\n");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.samples),
                                     HasSubstr("duplicate id 'b' at rows 1 and 3"))));
  testing::WriteText(files_.samples, "name\tsource\na\ts\n");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files_.samples + ":1"), HasSubstr("no 'id' column"))));
  files_.samples = dir_.file("missing.tsv");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.tsv")));
  files_.samples.clear();
  files_.features = dir_.file("missing.npy");
  EXPECT_THAT(Load(), StatusIs(absl::StatusCode::kNotFound, HasSubstr(files_.features)));
}

// Fashion-MNIST exported to .npy: the same rows as the IDX kind, bit for bit; an index of one
// model saved with either recipe has the same bytes and the same answers to queries by id.
TEST(TensorCorpusIndexTest, FashionMnistAsNpyGivesTheSameRowsIndexAndAnswers) {
  testing::TempDir dir;
  absl::StatusOr<TensorCorpusFiles> files =
      ExportFashionMnistNpy(kFashionMnistDefaultDir, dir.file("npy"), /*overwrite=*/false);
  TDA_ASSERT_OK(files);
  EXPECT_THAT(ExportFashionMnistNpy(kFashionMnistDefaultDir, dir.file("npy"), false).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("exists; nothing written")));
  for (Split split : {Split::kTrain, Split::kTest}) {
    absl::StatusOr<Dataset> idx = LoadFashionMnist(kFashionMnistDefaultDir, split);
    absl::StatusOr<Dataset> npy = LoadTensorCorpus(*files, split, 0, 0.05);
    TDA_ASSERT_OK(idx);
    TDA_ASSERT_OK(npy);
    ASSERT_EQ(idx->size(), npy->size());
    EXPECT_EQ(idx->feature_dim, npy->feature_dim);
    EXPECT_EQ(0, std::memcmp(idx->features.data(), npy->features.data(),
                             idx->features.size() * sizeof(float)));
    EXPECT_EQ(idx->labels, npy->labels);
    EXPECT_EQ(idx->ids, npy->ids);
    EXPECT_EQ(idx->sources, npy->sources);
    EXPECT_EQ(idx->class_names, npy->class_names);
  }

  testing::TinyModelSpec spec;
  spec.train_size = 1000;
  TrainRecipe idx_recipe;
  std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &idx_recipe);
  ASSERT_NE(model, nullptr);
  idx_recipe.data_dir = kFashionMnistDefaultDir;
  TrainRecipe npy_recipe = idx_recipe;
  npy_recipe.dataset = kTensorsDataset;
  absl::StatusOr<std::string> corpus = TensorCorpusSpec(*files);
  TDA_ASSERT_OK(corpus);
  npy_recipe.data_dir = *corpus;

  std::vector<std::unique_ptr<Attributor>> attributors;
  attributors.push_back(testing::IndexWithRecipe(*model, idx_recipe, dir.path(), "idx"));
  attributors.push_back(testing::IndexWithRecipe(*model, npy_recipe, dir.path(), "npy"));
  ASSERT_TRUE(attributors[0] != nullptr && attributors[1] != nullptr);
  EXPECT_EQ(attributors[1]->index().rows(), 1000);
  testing::ExpectSameIndexFiles(dir.file("idx-index"), dir.file("npy-index"));

  std::vector<Query> queries(2);
  queries[0].sample_id = "fashion-mnist/test/0";
  queries[1].sample_id = "fashion-mnist/train/5";
  AttributeOptions options;
  options.top_k = 5;
  absl::StatusOr<std::vector<QueryResult>> a = attributors[0]->Attribute(queries, options);
  absl::StatusOr<std::vector<QueryResult>> b = attributors[1]->Attribute(queries, options);
  TDA_ASSERT_OK(a);
  TDA_ASSERT_OK(b);
  for (size_t q = 0; q < queries.size(); ++q) {
    EXPECT_EQ((*a)[q].true_label, (*b)[q].true_label);
    ASSERT_EQ((*a)[q].proponents.size(), (*b)[q].proponents.size());
    for (size_t i = 0; i < (*a)[q].proponents.size(); ++i) {
      EXPECT_EQ((*a)[q].proponents[i].id, (*b)[q].proponents[i].id);
      EXPECT_EQ((*a)[q].proponents[i].score, (*b)[q].proponents[i].score);
    }
  }
  for (const char* id : {"fashion-mnist/test/3", "fashion-mnist/train/999"}) {
    absl::StatusOr<SampleData> x = attributors[0]->GetSample(id);
    absl::StatusOr<SampleData> y = attributors[1]->GetSample(id);
    TDA_ASSERT_OK(x);
    TDA_ASSERT_OK(y);
    EXPECT_EQ(x->features, y->features) << id;
    EXPECT_EQ(x->class_name, y->class_name) << id;
    EXPECT_EQ(x->record.id, y->record.id) << id;
  }
  EXPECT_THAT(attributors[1]->GetSample("fashion-mnist/test/99999").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("unknown sample id")));
}

}  // namespace
}  // namespace tda
