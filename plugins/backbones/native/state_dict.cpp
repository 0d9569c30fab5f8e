#include "state_dict.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <kgain/util/zip_check.hpp>

namespace kgain::native {
namespace {

// A Python value as far as a state dict needs one.
struct Object {
  enum class Kind { none, mark, integer, real, string, tuple, list, dict, global, tensor } kind = Kind::none;
  std::int64_t integer = 0;
  std::string text;                            // string, or a global's "module.name"
  std::vector<std::shared_ptr<Object>> items;  // tuple, list
  std::vector<std::pair<std::shared_ptr<Object>, std::shared_ptr<Object>>> entries;  // dict, in order
  at::Tensor tensor;
};
using Ref = std::shared_ptr<Object>;

c10::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, c10::ScalarType> types{
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  auto it = types.find(name);
  if (it == types.end()) throw std::runtime_error("unsupported storage type " + name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& reader, const std::string& data) : reader_(reader), data_(data) {}
  ~Unpickler() {
    stack_.clear();
    memo_.clear();
    for (auto& o : objects_) {  // every object is still held here, so clearing links frees nothing recursively
      o->items.clear();
      o->entries.clear();
    }
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  Ref run() {
    while (true) {
      const unsigned char op = byte();
      switch (op) {
        case 0x80: byte(); break;    // PROTO
        case 0x95: bytes(8); break;  // FRAME
        case '.': return pop();      // STOP
        case '(': push(make(Object::Kind::mark)); break;
        case 'N': push(make(Object::Kind::none)); break;
        case 0x88: push(integer(1)); break;  // NEWTRUE
        case 0x89: push(integer(0)); break;  // NEWFALSE
        case 'J': push(integer(static_cast<std::int32_t>(little(4)))); break;
        case 'K': push(integer(little(1))); break;
        case 'M': push(integer(little(2))); break;
        case 0x8a: {  // LONG1: n bytes, two's complement
          const std::size_t n = byte();
          if (n > 8)
            throw std::runtime_error("an integer of " + std::to_string(n) +
                                     " bytes in the pickle (a state dict has none over 8)");
          std::uint64_t v = little(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ULL << (8 * n);
          push(integer(static_cast<std::int64_t>(v)));
          break;
        }
        case 'G':
          bytes(8);
          push(make(Object::Kind::real));
          break;  // BINFLOAT: no state dict needs the value
        case 'X':
        case 'B':
        case 'T': push(string(bytes(little(4)))); break;
        case 0x8c:
        case 'C':
        case 'U': push(string(bytes(byte()))); break;
        case 0x8d:
        case 0x8e: push(string(bytes(little(8)))); break;
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = line(), name = line();
          push(global(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Ref name = pop(), module = pop();
          push(global(module->text + "." + name->text));
          break;
        }
        case 'q': memo_[little(1)] = top(); break;      // BINPUT
        case 'r': memo_[little(4)] = top(); break;      // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(memo(little(1))); break;         // BINGET
        case 'j': push(memo(little(4))); break;         // LONG_BINGET
        case ')': push(make(Object::Kind::tuple)); break;
        case ']': push(make(Object::Kind::list)); break;
        case '}': push(make(Object::Kind::dict)); break;
        case 't':
        case 'l': {  // TUPLE, LIST (from the mark)
          auto o = make(op == 't' ? Object::Kind::tuple : Object::Kind::list);
          o->items = pop_to_mark();
          push(o);
          break;
        }
        case 'd': {  // DICT (from the mark)
          auto o = make(Object::Kind::dict);
          auto items = pop_to_mark();
          for (std::size_t i = 0; i + 1 < items.size(); i += 2) o->entries.emplace_back(items[i], items[i + 1]);
          push(o);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto o = make(Object::Kind::tuple);
          o->items.resize(op - 0x84);
          for (auto it = o->items.rbegin(); it != o->items.rend(); ++it) *it = pop();
          push(o);
          break;
        }
        case 'a': {
          const Ref v = pop();
          top()->items.push_back(v);
          break;
        }  // APPEND
        case 'e': {
          auto items = pop_to_mark();
          for (auto& v : items) top()->items.push_back(v);
          break;
        }
        case 's': {
          const Ref v = pop(), k = pop();
          top()->entries.emplace_back(k, v);
          break;
        }            // SETITEM
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          for (std::size_t i = 0; i + 1 < items.size(); i += 2) top()->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'R': {
          const Ref args = pop(), callable = pop();
          push(call(callable, args));
          break;
        }  // REDUCE
        case 0x81: {
          pop();
          pop();
          push(make(Object::Kind::none));
          break;
        }                                          // NEWOBJ: an object we do not need
        case 'b': pop(); break;                    // BUILD: state of an object (e.g. a state dict's _metadata)
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case '0': pop(); break;
        case '1': pop_to_mark(); break;
        case '2': push(top()); break;
        default:
          throw std::runtime_error("unsupported pickle opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

 private:
  unsigned char byte() {
    if (pos_ >= data_.size()) throw std::runtime_error("the pickle ends early");
    return static_cast<unsigned char>(data_[pos_++]);
  }
  std::string bytes(std::uint64_t n) {
    if (n > data_.size() - pos_) throw std::runtime_error("the pickle ends early");  // no pos_ + n: it could wrap
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t little(std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
    return v;
  }
  std::string line() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string::npos) throw std::runtime_error("the pickle ends early");
    std::string out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  static std::string hex(unsigned v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[(v >> 4) & 15], digits[v & 15]};
  }
  // Every object is kept in objects_, so that the graph can be taken apart without recursion:
  // a pickle may nest a million tuples (or make a list that holds itself), and releasing such
  // a chain through shared_ptr destructors would overflow the stack.
  Ref make(Object::Kind kind) {
    auto o = std::make_shared<Object>();
    o->kind = kind;
    objects_.push_back(o);
    return o;
  }
  Ref integer(std::int64_t v) {
    auto o = make(Object::Kind::integer);
    o->integer = v;
    return o;
  }
  Ref string(std::string s) {
    auto o = make(Object::Kind::string);
    o->text = std::move(s);
    return o;
  }
  Ref global(std::string name) {
    auto o = make(Object::Kind::global);
    o->text = std::move(name);
    return o;
  }
  void push(Ref o) { stack_.push_back(std::move(o)); }
  Ref pop() {
    if (stack_.empty()) throw std::runtime_error("malformed pickle (stack underflow)");
    Ref o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Ref top() {
    if (stack_.empty()) throw std::runtime_error("malformed pickle (empty stack)");
    return stack_.back();
  }
  Ref memo(std::uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) throw std::runtime_error("malformed pickle (memo " + std::to_string(i) + ")");
    return it->second;
  }
  std::vector<Ref> pop_to_mark() {
    std::vector<Ref> items;
    while (true) {
      Ref o = pop();
      if (o->kind == Object::Kind::mark) break;
      items.push_back(o);
    }
    return {items.rbegin(), items.rend()};
  }

  // ('storage', torch.FloatStorage, key, location, numel): the archive's record data/<key>.
  Ref persistent(const Ref& pid) {
    if (pid->kind != Object::Kind::tuple || pid->items.size() < 5 || pid->items[0]->text != "storage" ||
        pid->items[1]->kind != Object::Kind::global || pid->items[2]->kind != Object::Kind::string ||
        pid->items[4]->kind != Object::Kind::integer)
      throw std::runtime_error("unsupported persistent object in the pickle");
    const std::string key = pid->items[2]->text;
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      const auto dtype = storage_dtype(pid->items[1]->text);
      const std::int64_t numel = pid->items[4]->integer;
      if (!reader_.hasRecord("data/" + key))
        throw std::runtime_error("storage " + key + " is missing from the archive");
      // The record's size is bounded by the file; the declared element count is checked
      // against it before anything is allocated.
      auto [data, size] = reader_.getRecord("data/" + key);
      const std::size_t element = c10::elementSize(dtype);
      if (numel < 0 || static_cast<std::uint64_t>(numel) != size / element || size % element != 0)
        throw std::runtime_error("storage " + key + " holds " + std::to_string(size) + " bytes, but declares " +
                                 std::to_string(numel) + " elements of " + std::to_string(element) + " bytes");
      at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
      std::memcpy(storage.data_ptr(), data.get(), size);
      it = storages_.emplace(key, storage).first;
    }
    auto o = make(Object::Kind::tensor);
    o->tensor = it->second;
    return o;
  }

  static std::vector<std::int64_t> ints(const Ref& tuple) {
    if (tuple->kind != Object::Kind::tuple || tuple->items.size() > 64)
      throw std::runtime_error("malformed tensor shape in the pickle");
    std::vector<std::int64_t> out;
    for (const auto& v : tuple->items) {
      if (v->kind != Object::Kind::integer || v->integer < 0)
        throw std::runtime_error("malformed tensor shape in the pickle");
      out.push_back(v->integer);
    }
    return out;
  }

  // A view (sizes, strides, offset) that stays inside its storage, checked without overflow.
  static at::Tensor checked_view(const at::Tensor& storage, const std::vector<std::int64_t>& sizes,
                                 const std::vector<std::int64_t>& strides, std::int64_t offset) {
    if (sizes.size() != strides.size() || offset < 0) throw std::runtime_error("malformed tensor in the pickle");
    const std::int64_t numel = storage.numel();
    std::int64_t last = offset;  // the largest element index the view touches
    bool empty = false;
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] == 0) empty = true;
      if (sizes[d] > numel || strides[d] > numel)
        throw std::runtime_error("a tensor in the pickle reaches past its storage");
      last += (sizes[d] > 0 ? sizes[d] - 1 : 0) * strides[d];
      if (last > numel) throw std::runtime_error("a tensor in the pickle reaches past its storage");
    }
    if (!empty && last >= numel) throw std::runtime_error("a tensor in the pickle reaches past its storage");
    return storage.as_strided(sizes, strides, offset);
  }

  Ref call(const Ref& callable, const Ref& args) {
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict") return make(Object::Kind::dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride, ...)
      if (args->items.size() < 4 || args->items[0]->kind != Object::Kind::tensor ||
          args->items[1]->kind != Object::Kind::integer)
        throw std::runtime_error("malformed tensor in the pickle");
      auto o = make(Object::Kind::tensor);
      o->tensor =
          checked_view(args->items[0]->tensor, ints(args->items[2]), ints(args->items[3]), args->items[1]->integer);
      return o;
    }
    // A parameter is its data; LibTorch's torch::pickle_save tags a dict with its static type.
    if ((name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag") &&
        !args->items.empty())
      return args->items[0];
    return make(Object::Kind::none);  // something a state dict does not need (kept out of the result)
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  const std::string& data_;
  std::size_t pos_ = 0;
  std::vector<Ref> stack_;
  std::map<std::uint64_t, Ref> memo_;
  std::map<std::string, at::Tensor> storages_;
  std::vector<std::shared_ptr<Object>> objects_;
};

// The tensors of a state dict (or of its "model"/"state_dict" entry), named by their keys.
std::map<std::string, at::Tensor> tensors_of(Ref root) {
  std::map<std::string, at::Tensor> out;
  if (root->kind != Object::Kind::dict) return out;
  Ref inner;
  for (const char* wrapper : {"model", "state_dict"})
    for (const auto& [k, v] : root->entries)
      if (k->text == wrapper && v->kind == Object::Kind::dict) inner = v;
  if (inner) root = inner;
  for (const auto& [k, v] : root->entries)
    if (k->kind == Object::Kind::string && v->kind == Object::Kind::tensor) out[k->text] = v->tensor;
  return out;
}

}  // namespace

std::map<std::string, at::Tensor> read_state_dict(const std::string& path) {
  const std::string how =
      " (expected a file written by torch.save(model.state_dict(), path) with PyTorch 1.6 or newer)";
  std::map<std::string, at::Tensor> out;
  try {
    kgain::verify_zip_checksums(path);
    caffe2::serialize::PyTorchStreamReader reader(path);
    auto [data, size] = reader.getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(data.get()), size);
    Unpickler unpickler(reader, pickle);
    out = tensors_of(unpickler.run());  // while the unpickler still holds every object
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read '" + path + "': " + e.what_without_backtrace() + how);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot read '" + path + "': " + e.what() + how);
  }
  if (out.empty()) throw std::runtime_error("'" + path + "' holds no tensors (or no dict of them)" + how);
  for (const auto& [name, tensor] : out)
    if (tensor.is_floating_point() && !at::isfinite(tensor).all().item<bool>())
      throw std::runtime_error("'" + path + "': the tensor '" + name +
                               "' holds NaN or infinite values; the weights are damaged "
                               "(download or copy the file again)");
  return out;
}

}  // namespace kgain::native
