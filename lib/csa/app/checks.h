// Range checks for numeric options, as CLI11 validators: a value outside the range fails the
// parse with "--OPTION: VALUE is out of range: expected ..." (exit 2, before any work is done).
// CLI11 hands a negative number to an option as its value ("--max-tokens -3"), so it reaches the
// check rather than being taken for a flag.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace csa::app {

// An integer >= `min` (and <= `max`).
CLI::Validator integer_at_least(int64_t min);
CLI::Validator integer_in(int64_t min, int64_t max);
// A finite number >= `min`.
CLI::Validator number_at_least(double min);
// A finite number in [low, high], the low end excluded with `low_open`, the high end with
// `high_open`: (low, high], [low, high).
CLI::Validator number_in(double low, double high, bool low_open = false, bool high_open = false);

}  // namespace csa::app
