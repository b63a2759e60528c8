#!/usr/bin/env bash
# Builds statectl and runs a backup round on a demo ESXi-like host laid out in a temp dir:
# no real host, no root privileges on real paths. Sticky bits are set here at run time.
# The binary is the one cargo reports building (so CARGO_TARGET_DIR is honoured), or
# STATECTL_BIN when set (scripts/release.sh runs the demo with its static binary). Each step
# must end with the exit code the demo expects (status and diff exit 3 while changes are
# pending); any other code stops the demo with exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${STATECTL_BIN:-}" ]; then
  bin=$STATECTL_BIN
else
  bin=$(cargo build --locked --bin statectl --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
  [ -n "$bin" ] || { echo "demo: cargo reported no statectl executable" >&2; exit 1; }
fi
demo=$(mktemp -d /tmp/statectl-demo.XXXXXX)
export STATECTL_ROOT="$demo" STATECTL_RUN_DIR="$demo/run"

mkdir -p "$demo/etc/vmware/ssl" "$demo/bootbank" "$demo/altbootbank"
echo 'root:x:0:0:root:/:/bin/sh' > "$demo/etc/passwd"
echo 'root:$6$demo$hash:19000:0:99999:7:::' > "$demo/etc/shadow"
echo '127.0.0.1 localhost' > "$demo/etc/hosts"
echo '/adv/Misc/HostName = "esx-demo"' > "$demo/etc/vmware/esx.conf"
echo 'demo key' > "$demo/etc/vmware/ssl/rui.key"
echo 'not persisted' > "$demo/etc/motd"
chmod 1644 "$demo/etc/passwd" "$demo/etc/hosts" "$demo/etc/vmware/esx.conf"
chmod 1600 "$demo/etc/shadow" "$demo/etc/vmware/ssl/rui.key"
for f in passwd hosts shadow vmware/esx.conf vmware/ssl/rui.key; do   # ESXi's branches
  cp -p "$demo/etc/$f" "$(dirname "$demo/etc/$f")/.#$(basename "$f")"
done
for bank in bootbank:3 altbootbank:2; do
  printf 'bootstate=0\ntitle=Loading VMware ESXi\nkernel=/b.b00\nmodules=/b.b00 --- /s.v00\nbuild=7.0.3-0.20.19193900\nupdated=%s\n' \
    "${bank#*:}" > "$demo/${bank%:*}/boot.cfg"
done

# step EXPECTED ARGS...: run statectl ARGS, fail the demo unless it exits EXPECTED.
step() {
  local expected=$1 code=0
  shift
  printf '\n$ statectl %s\n' "$*"
  "$bin" "$@" || code=$?
  case $code in
    0) ;;
    3) echo "(exit 3: changes are pending, the next backup saves them)" ;;
    *) echo "(exit $code)" ;;
  esac
  if [ "$code" -ne "$expected" ]; then
    echo "demo: \`statectl $*\` exited $code, expected $expected; demo host kept at $demo" >&2
    exit 1
  fi
}
echo "demo host: $demo"
echo "demo binary: $bin"
step 3 status
step 0 backup -v
step 0 backup -v
echo '10.0.0.1 vcenter' >> "$demo/etc/hosts"
step 3 status
step 3 diff
step 0 backup --json
step 0 status
step 0 list -l
step 0 verify
step 0 bank status
echo; echo "demo host kept at $demo (remove it with: rm -rf $demo)"
