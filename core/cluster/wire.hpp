// The wire format between the ranks of one MPI job (cluster.hpp): fixed-width integers and
// doubles in the machine's byte order, and length-prefixed strings. Trusted input: the same
// build wrote the bytes a moment ago on the same kind of machine; a short message is still
// refused, naming the likely cause.
// Threads: one Packer or Unpacker per thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace kgain::core {

class Packer {
 public:
  void u64(std::uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), 8); }
  void f64(double v) { bytes_.append(reinterpret_cast<const char*>(&v), 8); }
  void doubles(const std::vector<double>& v) { bytes_.append(reinterpret_cast<const char*>(v.data()), 8 * v.size()); }
  void text(const std::string& t) { u64(t.size()), bytes_ += t; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Unpacker {
 public:
  explicit Unpacker(const std::string& bytes) : bytes_(bytes) {}
  std::uint64_t u64() { return take<std::uint64_t>(); }
  double f64() { return take<double>(); }
  void doubles(std::vector<double>& v) {
    need(8 * v.size());
    std::memcpy(v.data(), bytes_.data() + at_, 8 * v.size()), at_ += 8 * v.size();
  }
  std::string text() {
    const std::uint64_t n = u64();
    need(n);
    std::string t = bytes_.substr(at_, n);
    at_ += n;
    return t;
  }

 private:
  template <class T>
  T take() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  void need(std::size_t n) const {
    if (bytes_.size() - at_ < n)
      throw std::runtime_error("a rank sent root a message cut short (a kgain of another version on that node?)");
  }
  const std::string& bytes_;
  std::size_t at_ = 0;
};

}  // namespace kgain::core
