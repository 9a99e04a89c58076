#!/usr/bin/env bash
# cmake/csa_git_commit.cmake records the commit of the csa source tree itself: a checkout's HEAD,
# "-dirty" with uncommitted changes to tracked files, "unknown" for a tree that is not a git
# checkout of its own (even inside another repository); the header changes only with the value.
# ctest runs this as the `git_commit` test (label unit); exits 77 (skipped) without git.
#   bash tests/git_commit/run_git_commit_test.sh SOURCE_DIR
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v git >/dev/null || { echo "git_commit test: git not found: not checked" >&2; exit 77; }
SCRIPT=$SRC/cmake/csa_git_commit.cmake
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "git_commit test: $*" >&2; exit 1; }
commit_of() {  # SOURCE_DIR -> the value the header records
  cmake -DSOURCE_DIR="$1" -DOUTPUT="$tmp/out.h" -P "$SCRIPT"
  sed -n 's/^#define CSA_GIT_COMMIT "\(.*\)"$/\1/p' "$tmp/out.h"
}
g() { git -c user.name=t -c user.email=t@t -c init.defaultBranch=main "$@"; }

# A repository with the sources at its top.
mkdir "$tmp/repo" && echo a > "$tmp/repo/f.txt"
g -C "$tmp/repo" init -q && g -C "$tmp/repo" add f.txt && g -C "$tmp/repo" commit -qm one
head=$(git -C "$tmp/repo" rev-parse --short=12 HEAD)
[ "$(commit_of "$tmp/repo")" = "$head" ] || fail "clean checkout: expected $head, got $(commit_of "$tmp/repo")"

# Unchanged value: the header is not rewritten (no recompilation).
touch -d '2000-01-01' "$tmp/out.h"
stamp=$(stat -c %Y "$tmp/out.h")
commit_of "$tmp/repo" >/dev/null
[ "$(stat -c %Y "$tmp/out.h")" = "$stamp" ] || fail "the header was rewritten with the same value"

# A tracked change: -dirty; an untracked file alone: not dirty.
echo b > "$tmp/repo/f.txt"
[ "$(commit_of "$tmp/repo")" = "$head-dirty" ] || fail "modified tracked file: expected $head-dirty"
git -C "$tmp/repo" checkout -q f.txt && echo new > "$tmp/repo/untracked.txt"
[ "$(commit_of "$tmp/repo")" = "$head" ] || fail "untracked file: expected $head"

# A new commit: a new value.
g -C "$tmp/repo" add untracked.txt && g -C "$tmp/repo" commit -qm two
head2=$(git -C "$tmp/repo" rev-parse --short=12 HEAD)
[ "$head2" != "$head" ] && [ "$(commit_of "$tmp/repo")" = "$head2" ] || fail "new commit: expected $head2"

# A copy without .git inside another repository: unknown, not the enclosing commit.
mkdir -p "$tmp/repo/vendor/csa" && echo x > "$tmp/repo/vendor/csa/CMakeLists.txt"
[ "$(commit_of "$tmp/repo/vendor/csa")" = "unknown" ] || fail "tree inside another repository: expected unknown, got $(commit_of "$tmp/repo/vendor/csa")"

# No repository at all.
mkdir "$tmp/plain"
[ "$(commit_of "$tmp/plain")" = "unknown" ] || fail "not a checkout: expected unknown"
echo "git_commit test: passed" >&2
