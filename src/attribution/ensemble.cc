// The ensemble side of Attributor (attributor.h): opening an ensemble index's members
// (index/ensemble_manifest.h), stacking their preconditioned queries, and one scan of their
// rows. Member k's score of (i, q) is R_k[i] . P_k g_k(q); the ensemble of the first m members
// scores sum_k R_k[i] . (P_k g_k(q) / m), summed block by block in one pass over the rows
// (ScanOptions::terms), so the top-k, per-source sums and kept scores are those of the mean.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "attribution/unit_norm.h"
#include "common/status_macros.h"
#include "index/ensemble_manifest.h"

namespace tda {
namespace {

// The members must index the same rows, in the same shards, to be scored row by row together.
absl::Status CheckSameRows(const GradientIndex& first, const GradientIndex& other,
                           const std::string& ensemble_dir) {
  auto differ = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat("ensemble ", ensemble_dir, ": member ", other.dir(),
                                            " ", what, " than member ", first.dir(),
                                            "; rebuild the ensemble"));
  };
  if (other.rows() != first.rows())
    return differ(absl::StrCat("has ", other.rows(), " rows, other"));
  if (other.dim() != first.dim())
    return differ(absl::StrCat("has dimension ", other.dim(), ", other"));
  if (other.manifest().shards.size() != first.manifest().shards.size()) {
    return differ("has other shards");
  }
  for (size_t s = 0; s < first.manifest().shards.size(); ++s) {
    if (other.manifest().shards[s].row_begin != first.manifest().shards[s].row_begin ||
        other.manifest().shards[s].row_end != first.manifest().shards[s].row_end) {
      return differ("has other shards");
    }
  }
  for (int64_t r = 0; r < first.rows(); ++r) {
    if (other.sample(r).id != first.sample(r).id) {
      return differ(absl::StrCat("has sample '", other.sample(r).id, "' at row ", r, ", other"));
    }
    if (other.is_deleted(r) != first.is_deleted(r)) return differ("has other deleted rows");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Attributor>> Attributor::Open(const std::string& index_dir,
                                                             GradientIndex::Verify verify) {
  if (!IsEnsembleDir(index_dir)) return OpenOne(index_dir, verify);
  ASSIGN_OR_RETURN(const EnsembleManifest manifest, ReadEnsembleManifest(index_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<Attributor> attributor,
                   OpenOne(EnsembleMemberDir(index_dir, 0), verify));
  RETURN_IF_ERROR(
      attributor->OpenMembers(index_dir, static_cast<int64_t>(manifest.members.size()), verify));
  return attributor;
}

absl::Status Attributor::OpenMembers(const std::string& dir, int64_t members,
                                     GradientIndex::Verify verify) {
  for (int64_t k = 1; k < members; ++k) {
    ASSIGN_OR_RETURN(std::unique_ptr<Attributor> member,
                     OpenOne(EnsembleMemberDir(dir, k), verify));
    RETURN_IF_ERROR(CheckSameRows(*index_, *member->index_, dir));
    if (member->model_->config().is_sequence() != model_->config().is_sequence()) {
      return absl::DataLossError(absl::StrCat("ensemble ", dir, ": member ", k,
                                              " is another kind of model than member 0"));
    }
    members_.push_back(std::move(member));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Attributor::MembersUsed(const AttributeOptions& options) const {
  if (options.ensemble_members < 0 || options.ensemble_members > ensemble_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ensemble_members must be 0 (all) or 1 to ", ensemble_size(), " for this index of ",
        ensemble_size(), ensemble_size() == 1 ? " model" : " models", ", got ",
        options.ensemble_members));
  }
  return options.ensemble_members == 0 ? ensemble_size() : options.ensemble_members;
}

absl::StatusOr<Attributor::PreparedQueries> Attributor::PrepareQueries(
    const std::vector<Query>& queries, const AttributeOptions& options) const {
  ASSIGN_OR_RETURN(const int64_t used, MembersUsed(options));
  if (used == 1) return PrepareOwnQueries(queries, options);
  return PrepareEnsembleQueries(queries, options, used);
}

absl::StatusOr<Attributor::PreparedQueries> Attributor::PrepareEnsembleQueries(
    const std::vector<Query>& queries, const AttributeOptions& options, int64_t used) const {
  const double weight = 1.0 / static_cast<double>(used);
  PreparedQueries stacked;
  for (int64_t k = 0; k < used; ++k) {
    ASSIGN_OR_RETURN(PreparedQueries own, member(k).PrepareOwnQueries(queries, options));
    const Eigen::Index dim = own.preconditioned.rows();
    if (k == 0) {
      stacked.results = std::move(own.results);
      stacked.preconditioned.resize(used * dim, own.preconditioned.cols());
      for (QueryResult& result : stacked.results) {
        result.loss *= weight;
        result.label_probability *= weight;
      }
    } else {
      for (size_t q = 0; q < own.results.size(); ++q) {
        stacked.results[q].loss += weight * own.results[q].loss;
        stacked.results[q].label_probability += weight * own.results[q].label_probability;
      }
    }
    stacked.preconditioned.middleRows(k * dim, dim) = own.preconditioned * weight;
  }
  return stacked;
}

absl::StatusOr<ScanResult> Attributor::ScanMembers(const Eigen::MatrixXd& preconditioned,
                                                   const AttributeOptions& options,
                                                   ScanOptions scan_options) const {
  const int64_t dim = index_->dim();
  const int64_t used = dim > 0 ? preconditioned.rows() / dim : 0;
  if (used < 1 || used > ensemble_size() || used * dim != preconditioned.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "preconditioned queries have ", preconditioned.rows(), " rows; this index takes ", dim,
        " per member, for 1 to ", ensemble_size(), " members"));
  }
  std::vector<Eigen::MatrixXf> blocks(static_cast<size_t>(used));
  for (int64_t k = 0; k < used; ++k) {
    blocks[k] = preconditioned.middleRows(k * dim, dim).cast<float>();
  }
  if (options.unit_norm) scan_options.row_scales = InverseRowNorms().data();
  for (int64_t k = 1; k < used; ++k) {
    const Attributor& m = member(k);
    scan_options.terms.push_back(
        {m.index_.get(), &blocks[k], options.unit_norm ? m.InverseRowNorms().data() : nullptr});
  }
  ScanResult scan = index_->Scan(blocks[0], scan_options);
  RETURN_IF_ERROR(scan.status);
  return scan;
}

}  // namespace tda
