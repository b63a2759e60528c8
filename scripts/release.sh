#!/usr/bin/env bash
# Release build: a static x86_64 statectl and its ESXi VIB, both reproducible.
#   bash scripts/release.sh          build twice in two separate target dirs, compare the bytes,
#                                    check and run the binary, pack and check the VIB
#   bash scripts/release.sh --check  the same with one build (what .ci/run runs)
# Output: target/dist/statectl and target/dist/statectl-<version>.vib (DIST_DIR moves them),
# with their sha256 printed last. Target: x86_64-unknown-linux-musl when rustup has (or can
# fetch) it, else a static glibc build (x86_64-unknown-linux-gnu with +crt-static);
# RELEASE_TARGET=x86_64-unknown-linux-gnu forces the latter.
# Reproducible: SOURCE_DATE_EPOCH from the last commit, source, cargo home and target dir
# remapped out of the binary (a test greps for them), one codegen unit, stripped, no build-id.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

mode=full
case "${1:-}" in
  '') ;;
  --check) mode=check ;;
  *) echo "usage: bash scripts/release.sh [--check]" >&2; exit 2 ;;
esac
die() { echo "release.sh: error: $*" >&2; exit 1; }
for tool in cargo rustc file ldd readelf ar tar gzip sha256sum python3; do
  command -v "$tool" >/dev/null || die "\`$tool\` is not installed (.ci/run installs it)"
done

target_base=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
version=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
dist=${DIST_DIR:-$target_base/dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

pick_target() {
  local musl=x86_64-unknown-linux-musl
  if [ -n "${RELEASE_TARGET:-}" ]; then echo "$RELEASE_TARGET"; return; fi
  if ! rustc --print target-libdir --target "$musl" 2>/dev/null | xargs -r test -d; then
    command -v rustup >/dev/null && timeout 300 rustup target add "$musl" >&2 || true
  fi
  if [ -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ]; then
    echo "$musl"
  else
    echo "release.sh: the musl target is not available: static glibc build instead" >&2
    echo x86_64-unknown-linux-gnu
  fi
}

# build DIR: a build of the dist profile (release + LTO, one codegen unit) into target dir DIR; prints the binary's path.
build() {
  local dir=$1 start=$SECONDS
  local flags="-C target-feature=+crt-static -C link-arg=-Wl,--build-id=none"
  flags+=" --remap-path-prefix=$src=/build/statectl"
  flags+=" --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/build/cargo"
  # The same flags for both builds (they feed cargo's hashes); CARGO_ENCODED_RUSTFLAGS would
  # override them, so it goes.
  env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS="$flags" CARGO_INCREMENTAL=0 \
    CARGO_PROFILE_DIST_STRIP=symbols \
    CARGO_PROFILE_DIST_DEBUG=0 CARGO_PROFILE_DIST_PANIC=unwind \
    cargo build --profile dist --locked --quiet --bin statectl --target "$target" --target-dir "$dir"
  echo "release.sh: build in $dir took $((SECONDS - start)) s" >&2
  echo "$dir/$target/dist/statectl"
}

check_static() {
  local bin=$1 kind
  kind=$(file -b "$bin")
  case $kind in
    *ELF\ 64-bit*x86-64*static*) echo "release.sh: file: $kind" ;;
    *) die "\`$bin\` is not a static x86-64 ELF: $kind" ;;
  esac
  if ldd "$bin" 2>&1 | grep -q '=>'; then die "ldd lists shared libraries for \`$bin\`"; fi
  if readelf -lW "$bin" | grep -q 'INTERP'; then die "\`$bin\` names a dynamic loader"; fi
  if readelf -dW "$bin" | grep -q '(NEEDED)'; then die "\`$bin\` needs shared libraries"; fi
  if readelf -nW "$bin" | grep -q 'Build ID'; then die "\`$bin\` carries a build-id"; fi
  if grep -q -a -F -e "$src" -e "${CARGO_HOME:-$HOME/.cargo}" -e "$target_base" "$bin"; then
    die "\`$bin\` holds a build path"
  fi
  echo "release.sh: ldd/readelf: no interpreter, no shared library, no build-id, no build path"
}

run_binary() {
  local bin=$1 said
  said=$("$bin" --version)
  [ "$said" = "statectl $version" ] || die "\`$bin --version\` said \`$said\`"
  echo "release.sh: $said runs"
  STATECTL_BIN=$bin bash scripts/demo.sh > "$work/demo.log" 2>&1 \
    || { cat "$work/demo.log" >&2; die "the demo failed with the release binary"; }
  rm -rf "$(sed -n 's/^demo host: //p' "$work/demo.log")"
  echo "release.sh: the demo runs with it (scripts/demo.sh, STATECTL_BIN)"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target=$(pick_target)
echo "release.sh: statectl $version for $target, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($mode)"
first=$(build "$target_base/release-a")
if [ "$mode" = full ]; then
  second=$(build "$target_base/release-b")
  cmp "$first" "$second" || die "two builds of the same source differ: $first $second"
  echo "release.sh: reproducible: both builds are $(sha256sum < "$first" | cut -d' ' -f1)"
fi
check_static "$first"
run_binary "$first"
mkdir -p "$dist"
install -m 0755 "$first" "$dist/statectl"
vib="$dist/statectl-$version.vib"
bash scripts/vib.sh "$dist/statectl" "$version-1" "$vib"
bash scripts/vib.sh "$dist/statectl" "$version-1" "$work/again.vib"
cmp "$vib" "$work/again.vib" || die "two packings of the same binary differ"
python3 scripts/check-vib.py "$vib" "$dist/statectl"
echo "sha256 $(sha256sum < "$dist/statectl" | cut -d' ' -f1)  $dist/statectl"
echo "sha256 $(sha256sum < "$vib" | cut -d' ' -f1)  $vib"
