#!/usr/bin/env bash
# Fails when a Catch2 test case sits in a folder other than its tier's (STYLE.md §6,
# tests/CMakeLists.txt): tests/<tier>/ holds the test cases tagged [<tier>], and only those.
#   unit    no files                   golden  committed fixtures only (never ../shared)
#   model   ../shared's models         cli     the apps (../shared)
#   gpu     a CUDA device (hidden [.])  bench   timings, hidden ([.]), never in ctest's tiers
# Also: unit sources name no fixture or shared path, golden sources no shared path (a test that
# reads them belongs to a later tier). ctest runs this as the `tiers` test of the unit label.
#   bash scripts/check_test_tiers.sh [SOURCE_DIR]
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/.." && pwd)}
command -v python3 >/dev/null || { echo "check_test_tiers: python3 not found: not checked" >&2; exit 77; }
python3 - "$SRC" <<'PY'
import pathlib, re, sys

src = pathlib.Path(sys.argv[1])
tests = src / "tests"
TIERS = ["unit", "golden", "model", "cli", "gpu", "bench"]
HIDDEN = {"bench", "gpu"}  # tiers whose cases carry [.]: they run only when named
# What a tier's sources may not name (helpers from tests/support.h, the macro behind them).
FORBIDDEN = {
    "unit": ["shared_dir", "shared_path", "fixtures_dir", "source_dir", "CSA_SOURCE_DIR"],
    "golden": ["shared_dir", "shared_path", "CSA_SHARED"],
}
NOT_CATCH = {"fuzz", "install", "git_commit", "fixtures", "sanitizers"}  # not Catch2 test sources

string = r'"(?:[^"\\]|\\.)*"'
case_re = re.compile(r'\b(?:TEST_CASE|SCENARIO)\s*\(\s*((?:%s\s*)+)(?:,\s*((?:%s\s*)+))?\)' % (string, string))
start_re = re.compile(r'\b(?:TEST_CASE|SCENARIO|TEST_CASE_METHOD|TEMPLATE_TEST_CASE)\s*\(')
comment_re = re.compile(r'//[^\n]*|/\*.*?\*/', re.S)

problems, n_cases = [], 0
for path in sorted(tests.rglob("*.cpp")) + sorted(tests.rglob("*.h")):
    rel = path.relative_to(src)
    parts = path.relative_to(tests).parts
    folder = parts[0] if len(parts) > 1 else None
    if folder in NOT_CATCH:
        continue
    text = comment_re.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), path.read_text())
    cases = list(case_re.finditer(text))
    if len(cases) != len(start_re.findall(text)):
        problems.append(f"{rel}: a test case this check cannot read (use TEST_CASE(\"name\", \"[tags]\"))")
    for m in cases:
        n_cases += 1
        line = text.count("\n", 0, m.start()) + 1
        name = "".join(re.findall(string, m.group(1)))
        tags = re.findall(r"\[([^\]]*)\]", m.group(2) or "")
        tiers = [t for t in tags if t in TIERS]
        where = f"{rel}:{line}: {name}"
        if folder is None:
            problems.append(f"{where}: a test case outside tests/<tier>/")
        elif folder not in TIERS:
            problems.append(f"{where}: tests/{folder}/ is not a tier folder ({', '.join(TIERS)})")
        elif tiers != [folder]:
            problems.append(f"{where}: tagged {tiers or 'with no tier'} in tests/{folder}/ "
                            f"(expected exactly [{folder}]: move it to tests/<tier>/ or fix the tag)")
        if folder in HIDDEN and "." not in tags:
            problems.append(f"{where}: [{folder}] cases are hidden with [.]")
    for word in FORBIDDEN.get(folder, []):
        hits = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\b%s\b" % word, text)]
        if hits:
            problems.append(f"{rel}:{hits[0]}: {word} in a {folder} source ({len(hits)} times; "
                            f"{folder} tests read "
                            f"{'no files' if folder == 'unit' else 'committed fixtures only'})")

for p in problems:
    print("check_test_tiers: " + p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check_test_tiers: {n_cases} test cases, each in its tier's folder", file=sys.stderr)
PY
