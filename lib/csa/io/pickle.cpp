#include "csa/io/pickle.h"

#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "csa/core/error.h"

namespace csa {
namespace {

// Nesting deeper than this is refused: TorchScript module trees are a few levels deep, and the
// graph's destructor (and every walk over it) recurses once per level.
constexpr size_t kMaxDepth = 1000;

at::ScalarType storage_dtype(const std::string& global, const std::string& origin) {
  static const std::unordered_map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool}};
  auto it = kTypes.find(global);
  if (it == kTypes.end())
    throw UnsupportedError(origin + ": tensor storage type '" + global + "' is not supported");
  return it->second;
}

class Machine {
 public:
  Machine(std::string_view d, const std::string& origin, const StorageLoader& load)
      : d_(d), origin_(origin), load_(load) {}
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Values that the result does not reach (everything, after an error) may form reference
  // cycles (APPEND of a list into itself through the memo) or deep chains: cut their links one
  // by one so that nothing leaks and nothing is freed recursively.
  ~Machine() {
    for (const PyRef& v : all_) {
      if (reachable_.count(v.get())) continue;
      v->items.clear();
      v->dict.clear();
      v->cls.reset();
      v->state.reset();
    }
  }

  // Runs the program; the result must be acyclic and at most kMaxDepth deep.
  PyRef run_checked() {
    PyRef root = run();
    check_graph(root);
    return root;
  }

 private:
  PyRef make(PyValue::Kind k) {
    auto v = std::make_shared<PyValue>();
    v->kind = k;
    all_.push_back(v);
    return v;
  }

  // Iterative depth-first walk: a node met again while on the path closes a cycle.
  void check_graph(const PyRef& root) {
    enum class Mark { kOnPath, kDone };
    std::unordered_map<const PyValue*, Mark> marks;
    struct Frame {
      const PyValue* v;
      std::vector<const PyValue*> children;
      size_t next = 0;
    };
    auto children_of = [](const PyValue* v) {
      std::vector<const PyValue*> c;
      for (const auto& x : v->items) c.push_back(x.get());
      for (const auto& [key, value] : v->dict) c.push_back(key.get()), c.push_back(value.get());
      if (v->cls) c.push_back(v->cls.get());
      if (v->state) c.push_back(v->state.get());
      return c;
    };
    std::vector<Frame> path;
    path.push_back({root.get(), children_of(root.get())});
    marks[root.get()] = Mark::kOnPath;
    while (!path.empty()) {
      Frame& f = path.back();
      if (f.next == f.children.size()) {
        marks[f.v] = Mark::kDone;
        path.pop_back();
        continue;
      }
      const PyValue* c = f.children[f.next++];
      auto it = marks.find(c);
      if (it != marks.end()) {
        if (it->second == Mark::kOnPath) fail("the pickled object graph has a reference cycle");
        continue;
      }
      if (path.size() >= kMaxDepth)
        fail("the pickled object graph is nested deeper than " + std::to_string(kMaxDepth));
      marks[c] = Mark::kOnPath;
      path.push_back({c, children_of(c)});
    }
    for (const auto& [v, mark] : marks) reachable_.insert(v);
  }

  PyRef run() {
    while (true) {
      if (pos_ >= d_.size()) fail("pickle ends without STOP (truncated)");
      op_pos_ = pos_;
      uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          take(8);
          break;  // FRAME
        case '.':
          return pop();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;
        case 'N':
          push(make(PyValue::Kind::kNone));
          break;
        case 0x88:
          push_bool(true);
          break;
        case 0x89:
          push_bool(false);
          break;
        case 'J':
          push_int(static_cast<int32_t>(uint_le(4)));
          break;
        case 'K':
          push_int(static_cast<int64_t>(uint_le(1)));
          break;
        case 'M':
          push_int(static_cast<int64_t>(uint_le(2)));
          break;
        case 0x8a: {  // LONG1
          size_t n = byte();
          if (n > 8) fail("integer wider than 64 bits");
          uint64_t v = n ? uint_le(n) : 0;
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
          auto v = make(PyValue::Kind::kFloat);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X':
          push_str(PyValue::Kind::kStr, uint_le(4));
          break;
        case 0x8c:
          push_str(PyValue::Kind::kStr, byte());
          break;
        case 0x8d:
          push_str(PyValue::Kind::kStr, uint_le(8));
          break;
        case 'B':
          push_str(PyValue::Kind::kBytes, uint_le(4));
          break;
        case 'C':
          push_str(PyValue::Kind::kBytes, byte());
          break;
        case 0x8e:
          push_str(PyValue::Kind::kBytes, uint_le(8));
          break;
        case ')':
          push(make(PyValue::Kind::kTuple));
          break;
        case 't': {
          auto v = make(PyValue::Kind::kTuple);
          v->items = pop_to_mark();
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          size_t n = op - 0x84;
          if (stack_.size() < n) fail("stack underflow");
          auto v = make(PyValue::Kind::kTuple);
          v->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case ']':
          push(make(PyValue::Kind::kList));
          break;
        case 'l': {
          auto v = make(PyValue::Kind::kList);
          v->items = pop_to_mark();
          push(v);
          break;
        }
        case 'a': {
          auto x = pop();
          top()->items.push_back(x);
          break;
        }
        case 'e': {
          auto xs = pop_to_mark();
          auto& list = top()->items;
          list.insert(list.end(), xs.begin(), xs.end());
          break;
        }
        case '}':
          push(make(PyValue::Kind::kDict));
          break;
        case 'd': {
          auto v = make(PyValue::Kind::kDict);
          auto xs = pop_to_mark();
          set_items(v, xs);
          push(v);
          break;
        }
        case 's': {
          auto value = pop();
          auto key = pop();
          set_items(top(), {key, value});
          break;
        }
        case 'u': {
          auto xs = pop_to_mark();
          set_items(top(), xs);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;
        case 'r':
          memo_[uint_le(4)] = top();
          break;
        case 0x94:
          memo_[memo_.size()] = top();
          break;
        case 'h':
          push(memo_get(byte()));
          break;
        case 'j':
          push(memo_get(uint_le(4)));
          break;
        case '0':
          pop();
          break;
        case '1':
          pop_to_mark();
          break;
        case '2':
          push(top());
          break;
        case 'c': {
          std::string module = line(), name = line();
          auto g = make(PyValue::Kind::kGlobal);
          g->s = module + "." + name;
          push(g);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          auto g = make(PyValue::Kind::kGlobal);
          g->s = module->s + "." + name->s;
          push(g);
          break;
        }
        case 'Q':
          push(persistent_load(pop()));
          break;
        case 'R': {
          auto args = pop();
          auto fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop();
          auto cls = pop();
          auto obj = make(PyValue::Kind::kObject);
          obj->cls = cls;
          obj->items = args->items;
          push(obj);
          break;
        }
        case 'b': {  // BUILD
          auto state = pop();
          auto obj = top();
          if (obj->kind == PyValue::Kind::kObject) obj->state = state;
          break;
        }
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + buf);
        }
      }
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(origin_ + ": " + what + " at byte " + std::to_string(op_pos_));
  }
  uint8_t byte() {
    if (pos_ >= d_.size()) fail("pickle truncated");
    return static_cast<uint8_t>(d_[pos_++]);
  }
  std::string_view take(size_t n) {
    if (n > d_.size() - pos_) fail("pickle truncated");
    auto s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint_le(size_t n) {
    auto s = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(s[i]);
    return v;
  }
  std::string line() {
    size_t end = d_.find('\n', pos_);
    if (end == std::string_view::npos) fail("pickle truncated in GLOBAL");
    std::string s(d_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  void push(PyRef v) {
    if (stack_.size() > (1u << 24)) fail("pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  void push_bool(bool b) {
    auto v = make(PyValue::Kind::kBool);
    v->i = b;
    push(v);
  }
  void push_int(int64_t i) {
    auto v = make(PyValue::Kind::kInt);
    v->i = i;
    push(v);
  }
  void push_str(PyValue::Kind k, uint64_t n) {
    auto v = make(k);
    v->s = std::string(take(n));
    push(v);
  }
  PyRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("pickle stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const PyRef& top() {
    if (stack_.empty()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<PyRef> pop_to_mark() {
    if (marks_.empty()) fail("pickle MARK missing");
    size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) fail("pickle MARK past the stack");
    std::vector<PyRef> xs(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return xs;
  }
  PyRef memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("pickle memo key " + std::to_string(k) + " missing");
    return it->second;
  }
  void set_items(const PyRef& d, const std::vector<PyRef>& xs) {
    if (d->kind != PyValue::Kind::kDict || xs.size() % 2 != 0) fail("SETITEMS on a non-dict");
    for (size_t i = 0; i < xs.size(); i += 2) {
      bool replaced = false;
      if (xs[i]->kind == PyValue::Kind::kStr) {
        for (auto& kv : d->dict) {
          if (kv.first->kind == PyValue::Kind::kStr && kv.first->s == xs[i]->s) {
            kv.second = xs[i + 1];
            replaced = true;
          }
        }
      }
      if (!replaced) d->dict.emplace_back(xs[i], xs[i + 1]);
    }
  }

  PyRef persistent_load(const PyRef& pid) {
    // ('storage', <GLOBAL torch.XStorage>, key, location, numel)
    if (pid->kind != PyValue::Kind::kTuple || pid->items.size() < 5 ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != PyValue::Kind::kGlobal ||
        pid->items[2]->kind != PyValue::Kind::kStr || pid->items[4]->kind != PyValue::Kind::kInt)
      fail("unexpected persistent id (not a tensor storage)");
    auto st = make(PyValue::Kind::kStorage);
    st->dtype = storage_dtype(pid->items[1]->s, origin_);
    st->storage_key = pid->items[2]->s;
    st->storage_numel = pid->items[4]->i;
    if (st->storage_numel < 0) fail("negative storage size");
    st->tensor = load_(st->storage_key, st->dtype, st->storage_numel);
    return st;
  }

  std::vector<int64_t> int_tuple(const PyRef& t, const char* what) {
    if (t->kind != PyValue::Kind::kTuple && t->kind != PyValue::Kind::kList)
      fail(std::string("tensor ") + what + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != PyValue::Kind::kInt || x->i < 0)
        fail(std::string("tensor ") + what + " has a non-integer entry");
      out.push_back(x->i);
    }
    return out;
  }

  PyRef reduce(const PyRef& fn, const PyRef& args) {
    const std::string name = fn->kind == PyValue::Kind::kGlobal ? fn->s : "";
    const auto& a = args->items;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != PyValue::Kind::kStorage ||
          a[1]->kind != PyValue::Kind::kInt)
        fail("malformed _rebuild_tensor arguments");
      auto sizes = int_tuple(a[2], "size"), strides = int_tuple(a[3], "stride");
      if (sizes.size() != strides.size()) fail("tensor size and stride ranks differ");
      // Sizes, strides and offset come from the file: every product and sum is checked.
      const int64_t offset = a[1]->i;
      int64_t last = offset, numel = 1;
      bool overflow = offset < 0;
      for (size_t k = 0; k < sizes.size() && !overflow; ++k) {
        int64_t step = 0;
        overflow = __builtin_mul_overflow(sizes[k], numel, &numel) ||
                   (sizes[k] > 0 && (__builtin_mul_overflow(sizes[k] - 1, strides[k], &step) ||
                                     __builtin_add_overflow(last, step, &last)));
      }
      if (numel == 0) last = offset - 1;  // an empty view reads nothing
      if (overflow || last >= a[0]->storage_numel)
        fail("tensor view (offset " + std::to_string(offset) + ") runs past its storage '" +
             a[0]->storage_key + "'");
      auto t = make(PyValue::Kind::kTensor);
      try {
        t->tensor = a[0]->tensor.as_strided(sizes, strides, offset);
      } catch (const c10::Error& e) {
        fail(std::string("tensor view rejected by libtorch: ") + e.what_without_backtrace());
      }
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag" ||
        name.rfind("torch.jit._pickle.build_", 0) == 0) {
      if (a.empty()) fail(name + " without arguments");
      return a[0];
    }
    if (name == "collections.OrderedDict") return make(PyValue::Kind::kDict);
    auto obj = make(PyValue::Kind::kObject);  // opaque: remembered, never executed
    obj->cls = fn;
    obj->items = a;
    return obj;
  }

  std::string_view d_;
  const std::string& origin_;
  const StorageLoader& load_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyRef> memo_;
  std::vector<PyRef> all_;                        // every value made, for the destructor
  std::unordered_set<const PyValue*> reachable_;  // from the result (kept intact)
};

}  // namespace

PyRef unpickle(std::string_view data, const std::string& origin, const StorageLoader& load) {
  Machine machine(data, origin, load);
  return machine.run_checked();
}

}  // namespace csa
