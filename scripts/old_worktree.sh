# Sourced by the before / after benchmarks (bench_load.sh, bench_tokenize.sh): a git worktree of
# OLD_COMMIT at OLD_DIR, where the "before" side is built.
#   old_worktree_add LABEL   # sets old_sha; creates the worktree unless OLD_DIR exists, and
#                            # fails (exit 2, LABEL in the message) when OLD_DIR is at another commit
#   old_worktree_remove      # for the script's EXIT trap: removes the worktree when this run
#                            # created it, unless KEEP_OLD=1
created_old=0
old_worktree_add() {
  old_sha=$(git rev-parse "$OLD_COMMIT")
  if [ ! -d "$OLD_DIR" ]; then
    git worktree add --detach "$OLD_DIR" "$old_sha" >&2
    created_old=1
  fi
  [ "$(git -C "$OLD_DIR" rev-parse HEAD)" = "$old_sha" ] ||
    { echo "$1: $OLD_DIR is not at $OLD_COMMIT" >&2; exit 2; }
}
old_worktree_remove() {
  if [ "$created_old" = 1 ] && [ "${KEEP_OLD:-0}" != 1 ]; then
    git worktree remove --force "$OLD_DIR" 2>/dev/null || rm -rf "$OLD_DIR"
  fi
}
