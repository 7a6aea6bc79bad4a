// Job path confinement (src/jobs/job_paths.h) and output ownership (src/jobs/job_outputs.h)
// on real temporary directories with real symlinks, and the spec range checks
// (src/jobs/job_spec.h).
#include "jobs/job_paths.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "jobs/job_kinds.h"
#include "jobs/job_outputs.h"
#include "test_support.h"

namespace tda {
namespace {

namespace fs = std::filesystem;

#define TDA_EXPECT_OK(expr)                                            \
  do {                                                                 \
    const absl::Status tda_s_ = ::tda::testing::internal_status(expr); \
    EXPECT_TRUE(tda_s_.ok()) << tda_s_.ToString();                     \
  } while (0)
using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

class JobPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.file("elsewhere"));
    absl::StatusOr<JobRoots> roots =
        MakeJobRoots(dir_.file("state"), dir_.file("data"), dir_.file("out"));
    TDA_ASSERT_OK(roots);
    roots_ = *roots;
  }

  absl::StatusOr<std::string> Input(const std::string& path) {
    return ResolveJobPath(roots_, "index", path, PathRole::kInput);
  }
  absl::StatusOr<std::string> Output(const std::string& path) {
    return ResolveJobPath(roots_, "out", path, PathRole::kOutputFile);
  }

  testing::TempDir dir_;
  JobRoots roots_;
};

TEST_F(JobPathsTest, RootsAreCreatedCanonicalAndDefaultUnderTheStateDir) {
  EXPECT_TRUE(fs::is_directory(roots_.data_root));
  EXPECT_TRUE(fs::is_directory(roots_.output_root));
  EXPECT_EQ(roots_.output_root, fs::canonical(dir_.file("out")).string());
  absl::StatusOr<JobRoots> defaults = MakeJobRoots(dir_.file("state2"), "", "");
  TDA_ASSERT_OK(defaults);
  EXPECT_EQ(defaults->data_root, fs::canonical(dir_.file("state2/data")).string());
  EXPECT_EQ(defaults->output_root, fs::canonical(dir_.file("state2/outputs")).string());
  EXPECT_THAT(MakeJobRoots(dir_.file("state"), "", dir_.file("state")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST_F(JobPathsTest, RelativePathsResolveAgainstTheirRoot) {
  absl::StatusOr<std::string> in = Input("models/a");
  TDA_ASSERT_OK(in);
  EXPECT_EQ(*in, roots_.data_root + "/models/a");
  absl::StatusOr<std::string> out = Output("results/./r.jsonl");
  TDA_ASSERT_OK(out);
  EXPECT_EQ(*out, roots_.output_root + "/results/r.jsonl");
  // An input may be an earlier job's output.
  TDA_EXPECT_OK(Input(roots_.output_root + "/index").status());
  // `..` that stays inside is fine.
  absl::StatusOr<std::string> inside = Output("a/../b");
  TDA_ASSERT_OK(inside);
  EXPECT_EQ(*inside, roots_.output_root + "/b");
}

TEST_F(JobPathsTest, AbsolutePathsOutsideTheRootsAreRefusedNamingThePath) {
  const absl::Status input = Input("/etc/passwd").status();
  EXPECT_THAT(input, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'/etc/passwd'")));
  EXPECT_THAT(input.message(), HasSubstr("--data-root " + roots_.data_root));
  const absl::Status output = Output(dir_.file("elsewhere/x")).status();
  EXPECT_THAT(output, StatusIs(absl::StatusCode::kPermissionDenied,
                               HasSubstr("outside --output-root " + roots_.output_root)));
  EXPECT_THAT(output.message(), HasSubstr("use a path under it"));
  // An input under the data root is not a valid output.
  EXPECT_THAT(Output(roots_.data_root + "/x").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

TEST_F(JobPathsTest, DotDotEscapesAreRefused) {
  EXPECT_THAT(Output("../../../etc/x").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("../../../etc/x")));
  EXPECT_THAT(Input("../elsewhere/x").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
  EXPECT_THAT(Output(roots_.output_root + "/a/../../elsewhere").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

TEST_F(JobPathsTest, ContainmentIsByComponentNotByStringPrefix) {
  fs::create_directories(dir_.file("out-evil"));
  EXPECT_THAT(Output(dir_.file("out-evil/x")).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
  EXPECT_TRUE(IsWithin("/a/b/c", "/a/b"));
  EXPECT_TRUE(IsWithin("/a/b", "/a/b"));
  EXPECT_FALSE(IsWithin("/a/bc", "/a/b"));
  EXPECT_FALSE(IsWithin("/a", "/a/b"));
}

TEST_F(JobPathsTest, SymlinksLeavingARootAreRefused) {
  fs::create_directory_symlink(dir_.file("elsewhere"), roots_.output_root + "/escape");
  fs::create_directory_symlink(dir_.file("elsewhere"), roots_.data_root + "/escape");
  EXPECT_THAT(Output("escape/x").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("resolves to")));
  EXPECT_THAT(Input("escape").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
  // A symlink that stays inside resolves to its target.
  fs::create_directories(roots_.output_root + "/real");
  fs::create_directory_symlink(roots_.output_root + "/real", roots_.output_root + "/alias");
  absl::StatusOr<std::string> alias = Output("alias/r.jsonl");
  TDA_ASSERT_OK(alias);
  EXPECT_EQ(*alias, roots_.output_root + "/real/r.jsonl");
  // A dangling symlink is refused.
  fs::create_symlink(dir_.file("elsewhere/missing"), roots_.output_root + "/dangling");
  EXPECT_THAT(Output("dangling").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

TEST_F(JobPathsTest, TheStateDirectoryIsNeverAnOutput) {
  // An output root that contains the state directory (here: the whole temporary directory).
  absl::StatusOr<JobRoots> wide = MakeJobRoots(dir_.file("state"), dir_.path(), dir_.path());
  TDA_ASSERT_OK(wide);
  for (const std::string& path :
       {dir_.file("state"), dir_.file("state/jobs.db"), dir_.file("state/x/y")}) {
    EXPECT_THAT(ResolveJobPath(*wide, "out_dir", path, PathRole::kOutputDirectory).status(),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("--state-dir")))
        << path;
  }
  TDA_EXPECT_OK(
      ResolveJobPath(*wide, "out_dir", dir_.file("idx"), PathRole::kOutputDirectory).status());
  // The root itself is no output either.
  EXPECT_THAT(Output(roots_.output_root).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
  // The default output root lies inside the state directory: outputs under it are fine, the
  // rest of the state directory is not.
  absl::StatusOr<JobRoots> defaults = MakeJobRoots(dir_.file("state3"), "", "");
  TDA_ASSERT_OK(defaults);
  TDA_EXPECT_OK(ResolveJobPath(*defaults, "out", "r.jsonl", PathRole::kOutputFile).status());
  EXPECT_THAT(ResolveJobPath(*defaults, "out", "../jobs.db", PathRole::kOutputFile).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

TEST_F(JobPathsTest, ResolveSpecPathsRewritesEveryPathFieldAndLeavesOptionalOnesEmpty) {
  absl::StatusOr<const JobKind*> kind = FindJobKind("batch-attribute");
  TDA_ASSERT_OK(kind);
  absl::StatusOr<std::string> spec =
      NormalizeJobSpec("batch-attribute", R"({"index": "idx", "queries": "q.jsonl", "out": "r"})");
  TDA_ASSERT_OK(spec);
  absl::StatusOr<std::string> resolved = ResolveSpecPaths(**kind, *spec, roots_);
  TDA_ASSERT_OK(resolved);
  const nlohmann::json j = nlohmann::json::parse(*resolved);
  EXPECT_EQ(j["index"], roots_.data_root + "/idx");
  EXPECT_EQ(j["out"], roots_.output_root + "/r");
  EXPECT_EQ(j["scores_out"], "");
  absl::StatusOr<std::string> bad =
      NormalizeJobSpec("batch-attribute", R"({"index": "idx", "queries": "q", "out": "/tmp/r"})");
  TDA_ASSERT_OK(bad);
  EXPECT_THAT(ResolveSpecPaths(**kind, *bad, roots_).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("out '/tmp/r'")));
  // Every kind with an output declares `overwrite`; paths are strings.
  for (const JobKind& k : JobKinds()) {
    bool has_output = false, has_overwrite = false;
    for (const JobSpecField& f : k.fields) {
      has_output = has_output || IsOutput(f.path);
      has_overwrite = has_overwrite || f.name == "overwrite";
      if (f.path != PathRole::kNone) {
        EXPECT_EQ(f.type, JobSpecField::Type::kString) << k.name << "." << f.name;
      }
    }
    EXPECT_EQ(has_output, has_overwrite) << k.name;
  }
}

TEST_F(JobPathsTest, AJobReplacesOnlyItsOwnOrWithOverwriteATdaOutput) {
  const OutputRegistry registry(roots_);
  const std::string file = roots_.output_root + "/r.jsonl";
  const auto check = [&](const OutputClaim& claim) {
    return registry.CheckReplaceable("out", file, PathRole::kOutputFile, claim);
  };
  TDA_EXPECT_OK(check({7, 0, false}));  // absent
  testing::WriteText(file, "someone's data\n");
  EXPECT_THAT(check({7, 0, false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(file)));
  EXPECT_THAT(check({7, 0, true}), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));

  // Job 7 of schedule 3 writes it.
  testing::WriteText(file, "{\"query_id\": \"q\"}\n");
  TDA_ASSERT_OK(registry.Record(file, {7, 3, false}));
  TDA_EXPECT_OK(check({7, 0, false}));  // a later attempt of job 7
  TDA_EXPECT_OK(check({9, 3, false}));  // a later run of schedule 3
  EXPECT_THAT(check({8, 0, false}),     // another job
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("written by job 7")));
  TDA_EXPECT_OK(check({8, 0, true}));  // ... with overwrite
  // Changed since: no longer the job's file, not even with overwrite.
  testing::WriteText(file, "{\"query_id\": \"edited\"}\n");
  EXPECT_THAT(check({7, 0, true}), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_EQ(testing::ReadText(file), "{\"query_id\": \"edited\"}\n");

  // Directories: a non-index directory is never replaceable, an empty one is.
  const std::string dir = roots_.output_root + "/idx";
  const auto check_dir = [&](const OutputClaim& claim) {
    return registry.CheckReplaceable("out_dir", dir, PathRole::kOutputDirectory, claim);
  };
  fs::create_directories(dir);
  TDA_EXPECT_OK(check_dir({1, 0, false}));
  testing::WriteText(dir + "/notes.txt", "keep me");
  EXPECT_THAT(check_dir({1, 0, true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not")));
  EXPECT_EQ(testing::ReadText(dir + "/notes.txt"), "keep me");
  // A registered directory (e.g. an unlearned model) is its writer's.
  TDA_ASSERT_OK(registry.Record(dir, {1, 0, false}));
  TDA_EXPECT_OK(check_dir({1, 0, false}));
  EXPECT_THAT(check_dir({2, 0, false}), StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));
  testing::WriteText(dir + "/more.txt", "added later");
  EXPECT_THAT(check_dir({1, 0, true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  // A file where a directory is wanted, and the other way round.
  EXPECT_THAT(registry.CheckReplaceable("out_dir", file, PathRole::kOutputDirectory, {1, 0, true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_THAT(registry.CheckReplaceable("out", dir, PathRole::kOutputFile, {1, 0, true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
}

TEST(JobSpecRangeTest, NumbersOutOfRangeAreRefusedNamingFieldValueAndRange) {
  for (const char* seconds : {"-5", "0", "1e9", "604801"}) {
    const absl::Status s =
        NormalizeJobSpec("sleep", absl::StrCat("{\"seconds\": ", seconds, "}")).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'seconds'"))) << seconds;
    EXPECT_THAT(s.message(), HasSubstr("(0, 604800]"));
  }
  TDA_EXPECT_OK(NormalizeJobSpec("sleep", R"({"seconds": 0.5})").status());
  const std::string base = R"({"index": "i", "queries": "q", "out": "o", )";
  EXPECT_THAT(NormalizeJobSpec("batch-attribute", base + R"("top_k": 0})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[1, 10000]")));
  EXPECT_THAT(NormalizeJobSpec("batch-attribute", base + R"("damping": -0.5})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1 or [0,")));
  TDA_EXPECT_OK(NormalizeJobSpec("batch-attribute", base + R"("damping": -1})").status());
  EXPECT_THAT(NormalizeJobSpec("batch-attribute", base + R"("batch": 100000})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'batch'")));
  EXPECT_THAT(NormalizeJobSpec("batch-attribute", base + R"("overwrite": 1})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("true or false")));
  EXPECT_THAT(
      NormalizeJobSpec("batch-attribute", R"({"index": "", "queries": "q", "out": "o"})").status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'index'")));
  EXPECT_THAT(NormalizeJobSpec("evaluate-lds", R"({"out": "o", "alpha": 1})").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(0, 1)")));
  EXPECT_THAT(
      NormalizeJobSpec("build-index", R"({"model_dir": "m", "out_dir": "o", "seed": -1})").status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'seed'")));
  // Every number of every kind declares its range, and its default lies in it.
  for (const JobKind& kind : JobKinds()) {
    for (const JobSpecField& f : kind.fields) {
      const bool number =
          f.type == JobSpecField::Type::kInt || f.type == JobSpecField::Type::kDouble;
      EXPECT_EQ(number, f.range.has_value()) << kind.name << "." << f.name;
      if (number && !f.default_value.empty()) {
        EXPECT_TRUE(f.range->Contains(std::stod(f.default_value))) << kind.name << "." << f.name;
      }
    }
  }
}

}  // namespace
}  // namespace tda
