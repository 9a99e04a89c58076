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

// The opcodes this reader runs, each under its name in CPython's pickletools (pickle.py); any
// other opcode is refused.
enum class Op : uint8_t {
  kProto = 0x80,            // PROTO: protocol version (1 byte)
  kFrame = 0x95,            // FRAME: frame length (8 bytes)
  kStop = '.',              // STOP: the top value is the result
  kMark = '(',              // MARK
  kPop = '0',               // POP
  kPopMark = '1',           // POP_MARK
  kDup = '2',               // DUP
  kNone = 'N',              // NONE
  kNewTrue = 0x88,          // NEWTRUE
  kNewFalse = 0x89,         // NEWFALSE
  kBinInt = 'J',            // BININT: int32
  kBinInt1 = 'K',           // BININT1: uint8
  kBinInt2 = 'M',           // BININT2: uint16
  kLong1 = 0x8a,            // LONG1
  kBinFloat = 'G',          // BINFLOAT
  kBinUnicode = 'X',        // BINUNICODE: uint32 length
  kShortBinUnicode = 0x8c,  // SHORT_BINUNICODE: uint8 length
  kBinUnicode8 = 0x8d,      // BINUNICODE8: uint64 length
  kBinBytes = 'B',          // BINBYTES: uint32 length
  kShortBinBytes = 'C',     // SHORT_BINBYTES: uint8 length
  kBinBytes8 = 0x8e,        // BINBYTES8: uint64 length
  kEmptyTuple = ')',        // EMPTY_TUPLE
  kTuple = 't',             // TUPLE: from the items above MARK
  kTuple1 = 0x85,           // TUPLE1
  kTuple2 = 0x86,           // TUPLE2
  kTuple3 = 0x87,           // TUPLE3
  kEmptyList = ']',         // EMPTY_LIST
  kList = 'l',              // LIST
  kAppend = 'a',            // APPEND
  kAppends = 'e',           // APPENDS
  kEmptyDict = '}',         // EMPTY_DICT
  kDict = 'd',              // DICT
  kSetItem = 's',           // SETITEM
  kSetItems = 'u',          // SETITEMS
  kBinPut = 'q',            // BINPUT: uint8 memo key
  kLongBinPut = 'r',        // LONG_BINPUT: uint32 memo key
  kMemoize = 0x94,          // MEMOIZE: the next memo key
  kBinGet = 'h',            // BINGET
  kLongBinGet = 'j',        // LONG_BINGET
  kGlobal = 'c',            // GLOBAL: "module\nname\n"
  kStackGlobal = 0x93,      // STACK_GLOBAL
  kBinPersId = 'Q',         // BINPERSID: a tensor storage
  kReduce = 'R',            // REDUCE: callable(*args)
  kNewObj = 0x81,           // NEWOBJ: cls.__new__(cls, *args)
  kBuild = 'b',             // BUILD: sets the state of an object
};

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

  // The program: one opcode at a time until STOP, whose value is the result. Each group of
  // opcodes has its handler; an opcode none of them knows is refused.
  PyRef run() {
    while (true) {
      if (pos_ >= d_.size()) fail("pickle ends without STOP (truncated)");
      op_pos_ = pos_;
      const auto op = static_cast<Op>(byte());
      if (op == Op::kStop) return pop();
      if (!(skip_framing(op) || push_scalar(op) || build_container(op) || stack_or_memo(op) ||
            build_object(op)))
        fail_unsupported(op);
    }
  }

  // PROTO and FRAME: protocol version and frame length, which a reader of a whole buffer ignores.
  bool skip_framing(Op op) {
    switch (op) {
      case Op::kProto:
        byte();
        return true;
      case Op::kFrame:
        take(8);
        return true;
      default:
        return false;
    }
  }

  // None, booleans, integers, floats, strings and bytes.
  bool push_scalar(Op op) {
    switch (op) {
      case Op::kNone:
        push(make(PyValue::Kind::kNone));
        return true;
      case Op::kNewTrue:
        push_bool(true);
        return true;
      case Op::kNewFalse:
        push_bool(false);
        return true;
      case Op::kBinInt:
        push_int(static_cast<int32_t>(uint_le(4)));
        return true;
      case Op::kBinInt1:
        push_int(static_cast<int64_t>(uint_le(1)));
        return true;
      case Op::kBinInt2:
        push_int(static_cast<int64_t>(uint_le(2)));
        return true;
      case Op::kLong1:
        push_int(read_long1());
        return true;
      case Op::kBinFloat:
        push_float(read_binfloat());
        return true;
      case Op::kBinUnicode:
        push_str(PyValue::Kind::kStr, uint_le(4));
        return true;
      case Op::kShortBinUnicode:
        push_str(PyValue::Kind::kStr, byte());
        return true;
      case Op::kBinUnicode8:
        push_str(PyValue::Kind::kStr, uint_le(8));
        return true;
      case Op::kBinBytes:
        push_str(PyValue::Kind::kBytes, uint_le(4));
        return true;
      case Op::kShortBinBytes:
        push_str(PyValue::Kind::kBytes, byte());
        return true;
      case Op::kBinBytes8:
        push_str(PyValue::Kind::kBytes, uint_le(8));
        return true;
      default:
        return false;
    }
  }

  // Tuples, lists and dicts: made empty, from the items above the last MARK, or from the top
  // one to three values (TUPLE1..3); appended to and set in place.
  bool build_container(Op op) {
    switch (op) {
      case Op::kEmptyTuple:
        push(make(PyValue::Kind::kTuple));
        return true;
      case Op::kTuple: {
        auto v = make(PyValue::Kind::kTuple);
        v->items = pop_to_mark();
        push(v);
        return true;
      }
      case Op::kTuple1:
      case Op::kTuple2:
      case Op::kTuple3:
        push_tuple_of_top(op == Op::kTuple1 ? 1 : op == Op::kTuple2 ? 2 : 3);
        return true;
      case Op::kEmptyList:
        push(make(PyValue::Kind::kList));
        return true;
      case Op::kList: {
        auto v = make(PyValue::Kind::kList);
        v->items = pop_to_mark();
        push(v);
        return true;
      }
      case Op::kAppend: {
        auto x = pop();
        top()->items.push_back(x);
        return true;
      }
      case Op::kAppends: {
        auto xs = pop_to_mark();
        auto& list = top()->items;
        list.insert(list.end(), xs.begin(), xs.end());
        return true;
      }
      case Op::kEmptyDict:
        push(make(PyValue::Kind::kDict));
        return true;
      case Op::kDict: {
        auto v = make(PyValue::Kind::kDict);
        auto xs = pop_to_mark();
        set_items(v, xs);
        push(v);
        return true;
      }
      case Op::kSetItem: {
        auto value = pop();
        auto key = pop();
        set_items(top(), {key, value});
        return true;
      }
      case Op::kSetItems: {
        auto xs = pop_to_mark();
        set_items(top(), xs);
        return true;
      }
      default:
        return false;
    }
  }

  // MARK, POP, POP_MARK, DUP and the memo (PUT stores the top value under a key, GET pushes it).
  bool stack_or_memo(Op op) {
    switch (op) {
      case Op::kMark:
        marks_.push_back(stack_.size());
        return true;
      case Op::kPop:
        pop();
        return true;
      case Op::kPopMark:
        pop_to_mark();
        return true;
      case Op::kDup:
        push(top());
        return true;
      case Op::kBinPut: {
        PyRef v = top();  // the value first: an empty stack fails before a truncated key
        memo_[byte()] = v;
        return true;
      }
      case Op::kLongBinPut: {
        PyRef v = top();
        memo_[uint_le(4)] = v;
        return true;
      }
      case Op::kMemoize: {
        PyRef v = top();
        memo_[memo_.size()] = v;
        return true;
      }
      case Op::kBinGet:
        push(memo_get(byte()));
        return true;
      case Op::kLongBinGet:
        push(memo_get(uint_le(4)));
        return true;
      default:
        return false;
    }
  }

  // Names (GLOBAL, STACK_GLOBAL), tensor storages (BINPERSID) and objects: REDUCE and NEWOBJ
  // calls are interpreted for torch's rebuild functions and otherwise kept opaque; BUILD sets an
  // object's state.
  bool build_object(Op op) {
    switch (op) {
      case Op::kGlobal: {
        std::string module = line(), name = line();
        push_global(module + "." + name);
        return true;
      }
      case Op::kStackGlobal: {
        auto name = pop(), module = pop();
        push_global(module->s + "." + name->s);
        return true;
      }
      case Op::kBinPersId:
        push(persistent_load(pop()));
        return true;
      case Op::kReduce: {
        auto args = pop();
        auto fn = pop();
        push(reduce(fn, args));
        return true;
      }
      case Op::kNewObj: {
        auto args = pop();
        auto cls = pop();
        auto obj = make(PyValue::Kind::kObject);
        obj->cls = cls;
        obj->items = args->items;
        push(obj);
        return true;
      }
      case Op::kBuild: {
        auto state = pop();
        auto obj = top();
        if (obj->kind == PyValue::Kind::kObject) obj->state = state;
        return true;
      }
      default:
        return false;
    }
  }

  [[noreturn]] void fail_unsupported(Op op) const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(op));
    fail(std::string("unsupported pickle opcode ") + buf);
  }
  // LONG1: a length byte, then that many bytes of a little-endian two's-complement integer.
  int64_t read_long1() {
    size_t n = byte();
    if (n > 8) fail("integer wider than 64 bits");
    uint64_t v = n ? uint_le(n) : 0;
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
    return static_cast<int64_t>(v);
  }
  // BINFLOAT: an IEEE 754 double, big-endian.
  double read_binfloat() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
    double f;
    std::memcpy(&f, &bits, 8);
    return f;
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
  void push_float(double f) {
    auto v = make(PyValue::Kind::kFloat);
    v->f = f;
    push(v);
  }
  void push_global(std::string name) {
    auto g = make(PyValue::Kind::kGlobal);
    g->s = std::move(name);
    push(g);
  }
  // TUPLE1..3: the top n values become a tuple.
  void push_tuple_of_top(size_t n) {
    if (stack_.size() < n) fail("stack underflow");
    auto v = make(PyValue::Kind::kTuple);
    v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
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
