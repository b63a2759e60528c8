#!/usr/bin/env bash
# Builds statectl and runs a backup round on a demo ESXi-like host laid out in a temp dir:
# no real host, no root privileges on real paths. Sticky bits are set here at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="$PWD/target/release/statectl"
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
# Modified image files have a `.#` branch (the image's original): what ESXi persists.
for f in passwd shadow hosts vmware/esx.conf vmware/ssl/rui.key; do
  : > "$demo/etc/$(dirname "$f")/.#$(basename "$f")"
done
for bank in bootbank:3 altbootbank:2; do
  printf 'bootstate=0\ntitle=Loading VMware ESXi\nkernel=/b.b00\nmodules=/b.b00 --- /s.v00\nbuild=7.0.3-0.20.19193900\nupdated=%s\n' \
    "${bank#*:}" > "$demo/${bank%:*}/boot.cfg"
done

step() { printf '\n$ statectl %s\n' "$*"; "$bin" "$@" || echo "(exit $?)"; }
echo "demo host: $demo"
step status
step backup -v
step backup -v
echo '10.0.0.1 vcenter' >> "$demo/etc/hosts"
step status
step diff
step backup --json
step list -l
step verify
step bank status
echo; echo "demo host kept at $demo (remove it with: rm -rf $demo)"
