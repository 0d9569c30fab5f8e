// FoldGrams: the Gram matrices of many folds' training rows from products formed once per block.
//
// In k-fold cross-validation every image trains in k - 1 folds, so a closed-form probe that
// forms each fold's Gram matrix alone computes k - 1 products per image. Here the rows are split
// into blocks by the set of folds they train in (k-fold: one block per test fold), each block's
// float32 Gram matrix of its rows minus a common shift (the mean of all training rows) is formed
// once (kgain/numeric/gram.hpp), and a fold's matrix is the sum over the blocks it trains on, centred on
// the fold's own mean and scaled by its own standard deviations: the Gram matrix of the fold's
// standardized, centred training rows, X_c^T X_c, up to float32 rounding. (Shifting first keeps
// the centring from cancelling: (x - s) is as small as (x - mean).) Product work: n d^2 / 2 for
// all folds, against (k - 1) n d^2 / 2 fold by fold; memory: one d x d float32 matrix per block.
// The result is float32-accurate: a probe refines its solution against the fold's float64 rows
// (as the ridge probe does) or uses it where that accuracy is enough (a preconditioner).
// Threads: pure functions of their arguments; FoldGrams is read-only after construction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include <ATen/ATen.h>

#include "kgain/numeric/gram.hpp"
#include "kgain/probe.hpp"

namespace kgain {

// Rows that train in the same folds.
struct RowBlock {
  std::vector<std::int64_t> rows;  // ascending
  std::vector<bool> trains_in;     // [fold]
};

// The blocks of rows [0, n) under `folds`, in order of each block's first row; rows that train
// in no fold are in none.
inline std::vector<RowBlock> row_blocks(std::int64_t n, const std::vector<FoldRows>& folds) {
  std::vector<std::vector<bool>> pattern(static_cast<std::size_t>(n), std::vector<bool>(folds.size(), false));
  for (std::size_t f = 0; f < folds.size(); ++f) {
    const at::Tensor train = folds[f].train.to(at::kLong).contiguous();
    const std::int64_t* rows = train.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < train.numel(); ++i) {
      TORCH_CHECK(rows[i] >= 0 && rows[i] < n, "row_blocks: fold ", f, " names row ", rows[i], " of ", n);
      pattern[static_cast<std::size_t>(rows[i])][f] = true;
    }
  }
  std::vector<RowBlock> blocks;
  std::map<std::vector<bool>, std::size_t> index;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& p = pattern[static_cast<std::size_t>(i)];
    if (std::find(p.begin(), p.end(), true) == p.end()) continue;
    const auto [at, added] = index.emplace(p, blocks.size());
    if (added) blocks.push_back({{}, p});
    blocks[at->second].rows.push_back(i);
  }
  return blocks;
}

class FoldGrams {
 public:
  // features: float32 [n, d], the rows the folds index.
  FoldGrams(const at::Tensor& features, std::vector<RowBlock> blocks) : blocks_(std::move(blocks)) {
    std::vector<std::int64_t> all;
    for (const auto& b : blocks_) all.insert(all.end(), b.rows.begin(), b.rows.end());
    TORCH_CHECK(!all.empty(), "FoldGrams: no training rows");
    shift_ = features.index_select(0, at::tensor(all, at::kLong)).to(at::kDouble).mean(0);
    for (const auto& b : blocks_) {
      const at::Tensor shifted = features.index_select(0, at::tensor(b.rows, at::kLong)).to(at::kDouble) - shift_;
      gram_.push_back(gram(shifted.to(at::kFloat)));
      sum_.push_back(shifted.sum(0));
    }
  }

  const std::vector<RowBlock>& blocks() const { return blocks_; }

  // Fold f's sum over its training rows of z z^T, z = (x - mean) / scale (mean: the fold's
  // training mean; scale: float64 [d], the fold's standard deviations), plus `diagonal` on the
  // diagonal: float64 [d, d]. One pass over the blocks' matrices, no temporaries.
  at::Tensor standardized(std::size_t f, const at::Tensor& scale, double diagonal) const {
    const std::int64_t d = shift_.size(0);
    TORCH_CHECK(scale.scalar_type() == at::kDouble && scale.is_contiguous() && scale.numel() == d,
                "FoldGrams::standardized: float64 [d] scale expected");
    std::vector<const float*> mine;
    at::Tensor sum = at::zeros({d}, at::kDouble);
    double count = 0;
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (blocks_[b].trains_in.at(f))
        mine.push_back(gram_[b].data_ptr<float>()), sum += sum_[b],
            count += static_cast<double>(blocks_[b].rows.size());
    TORCH_CHECK(count > 0, "FoldGrams: fold ", f, " has no training rows");
    at::Tensor out = at::empty({d, d}, at::kDouble);
    double* o = out.data_ptr<double>();
    const double *s = sum.data_ptr<double>(), *c = scale.data_ptr<double>();
    for (std::int64_t i = 0; i < d; ++i) {
      double* row = o + i * d;
      std::fill(row, row + d, 0.0);
      for (const float* g : mine)
        for (std::int64_t j = 0; j < d; ++j) row[j] += static_cast<double>(g[i * d + j]);
      // sum (x - s)(x - s)^T - n (mean - s)(mean - s)^T, with n (mean - s) = sum (x - s)
      for (std::int64_t j = 0; j < d; ++j) row[j] = (row[j] - s[i] * s[j] / count) / (c[i] * c[j]);
      row[i] += diagonal;
    }
    return out;
  }

 private:
  std::vector<RowBlock> blocks_;
  at::Tensor shift_;                    // float64 [d]
  std::vector<at::Tensor> gram_, sum_;  // per block: float32 [d, d] of rows - shift_; float64 [d]
};

}  // namespace kgain
