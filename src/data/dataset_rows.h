// An in-memory Dataset as a RowSource (data/row_source.h), so that callers holding a Dataset use
// the streaming consumers unchanged. Views the data set: it must outlive the adapter.
#pragma once

#include <memory>

#include "data/dataset.h"
#include "data/row_source.h"

namespace tda {

class DatasetRows : public RowSource {
 public:
  explicit DatasetRows(const Dataset& data) : data_(data) {}

  const std::string& name() const override { return data_.name; }
  int64_t size() const override { return data_.size(); }
  int64_t sequence_length() const override { return data_.sequence_length; }
  int64_t feature_dim() const override { return data_.feature_dim; }
  Batch Gather(const int64_t* rows, int64_t count, RowStorage* storage) const override;
  std::string id(int64_t i) const override { return data_.ids[static_cast<size_t>(i)]; }
  std::string source(int64_t i) const override { return data_.sources[static_cast<size_t>(i)]; }
  std::string preview(int64_t i) const override {
    return i < static_cast<int64_t>(data_.previews.size()) ? data_.previews[i] : std::string();
  }
  int32_t label(int64_t i) const override {
    return data_.is_sequence() ? -1 : data_.labels[static_cast<size_t>(i)];
  }
  int64_t used_positions(int64_t i) const override { return data_.used_positions(i); }
  const std::vector<std::string>& class_names() const override { return data_.class_names; }

  const Dataset& data() const { return data_; }

 private:
  const Dataset& data_;
};

// `data` behind a RowSource that owns it.
std::unique_ptr<RowSource> OwnDatasetRows(Dataset data);

// Every row of `source` in memory, as a Dataset (the same rows, ids, sources, previews and labels).
Dataset MaterializeRows(const RowSource& source);

}  // namespace tda
