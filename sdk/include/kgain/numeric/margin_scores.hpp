// scores_from_margins: class scores for probes that produce margins, not probabilities.
//
// SVMs and ridge classifiers give one decision value per one-vs-rest column (one column for
// two classes). kgain's metrics want one score per class, rows summing to one; the softmax of
// the margins (for one column, the sigmoid, as [1 - p, p]) keeps the top class and every
// ranking, so accuracy and ROC-AUC are exact, while log-loss on these scores is not calibrated.
// Threads: a pure function, safe from any thread.
#pragma once

#include <ATen/ATen.h>

namespace kgain {

// margins: [n, 1] for two classes, [n, k] otherwise; returns float64 [n, max(2, k)].
inline at::Tensor scores_from_margins(const at::Tensor& margins) {
  const at::Tensor m = margins.to(at::kDouble);
  if (m.size(1) == 1) {
    const at::Tensor p1 = at::sigmoid(m);
    return at::cat({1 - p1, p1}, 1);
  }
  return at::softmax(m, 1);
}

}  // namespace kgain
