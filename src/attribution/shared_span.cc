#include "attribution/shared_span.h"

#include <vector>

namespace tda {

SharedSpan LongestSharedSpan(std::string_view query, std::string_view document) {
  SharedSpan best;
  // run[j + 1] = length of the common suffix of query[..i] and document[..j].
  std::vector<int64_t> run(document.size() + 1, 0);
  for (size_t i = 0; i < query.size(); ++i) {
    for (size_t j = document.size(); j-- > 0;) {
      run[j + 1] = query[i] == document[j] ? run[j] + 1 : 0;
      if (run[j + 1] > best.length) {
        best.length = run[j + 1];
        best.query_offset = static_cast<int64_t>(i) + 1 - best.length;
        best.document_offset = static_cast<int64_t>(j) + 1 - best.length;
      }
    }
  }
  return best;
}

}  // namespace tda
