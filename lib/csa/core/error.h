// Typed errors. The library throws; only apps catch, log and exit (STYLE.md §8).
// Every message names the offending file / field / value.
#pragma once

#include <stdexcept>
#include <string>

namespace csa {

// The kind decides the process exit code of the apps (docs/cli.md lists them).
enum class ErrorKind {
  kInternal = 1,     // a bug: an invariant broke
  kUsage = 2,        // bad command-line options (CLI11 uses 2 too)
  kIo = 3,           // a file is missing, unreadable or unwritable
  kFormat = 4,       // a file's content is corrupt or malformed (incl. tensor name/shape errors)
  kUnsupported = 5,  // valid input that csa does not support (e.g. an unknown rope_type)
  kInput = 6,        // semantically bad input: empty text, a policy for another model, ...
  kQuality = 7,      // a run finished but the requested quality bar was not met
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

struct IoError : Error {
  explicit IoError(const std::string& m) : Error(ErrorKind::kIo, m) {}
};
struct FormatError : Error {
  explicit FormatError(const std::string& m) : Error(ErrorKind::kFormat, m) {}
};
struct UnsupportedError : Error {
  explicit UnsupportedError(const std::string& m) : Error(ErrorKind::kUnsupported, m) {}
};
struct InputError : Error {
  explicit InputError(const std::string& m) : Error(ErrorKind::kInput, m) {}
};
struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ErrorKind::kUsage, m) {}
};
struct QualityError : Error {
  explicit QualityError(const std::string& m) : Error(ErrorKind::kQuality, m) {}
};

// Throws Error(kInternal) with the location; for invariants, never for user input.
#define CSA_CHECK(cond, msg)                                                  \
  do {                                                                        \
    if (!(cond))                                                              \
      throw ::csa::Error(::csa::ErrorKind::kInternal,                         \
                         std::string("internal error at ") + __FILE__ + ":" + \
                             std::to_string(__LINE__) + ": " + (msg));        \
  } while (0)

}  // namespace csa
