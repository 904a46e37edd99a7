#!/bin/bash
# Copy this checkout's source (tracked files, and untracked ones git does
# not ignore) into DEST, a build tree kept between runs outside the
# checkout (contrib/test-asan.sh, contrib/mutation-check.sh).
#
#   contrib/copy-tree.sh DEST
#
# Only files whose content differs are written, with the time of the copy:
# make then rebuilds exactly what changed.  Copying mtimes as they are
# (tar's default) would not do: a file from another branch or an older
# checkout can be older than the object built from its predecessor, and
# the build would link stale objects.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: contrib/copy-tree.sh DEST}
mkdir -p "$dest"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue    # deleted in the work tree, not yet in git
	if ! cmp -s "$f" "$dest/$f"; then
		mkdir -p "$dest/$(dirname "$f")"
		cp "$f" "$dest/$f.copy-tree" && mv "$dest/$f.copy-tree" "$dest/$f"
		chmod --reference="$f" "$dest/$f"
	fi
done
