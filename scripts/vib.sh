#!/usr/bin/env bash
# Packs a statectl binary as an ESXi VIB (community-supported, unsigned):
#   scripts/vib.sh BINARY VERSION OUTPUT.vib
# The VIB is an `ar` archive holding, in this order, descriptor.xml, an empty sig.pkcs7 and one
# payload `statectl` (a gzip'd ustar: opt/statectl/bin/statectl and the init script
# etc/init.d/statectl from scripts/esxi/statectl.init, both mode 0755, owner 0:0), so nothing of
# ESXi's own files is replaced (the init script links to the binary at run time).
# VIB_EXTRA_TREE=DIR adds DIR's files to the payload as they lie (tests use it to make a VIB the
# check must refuse). The output depends only on its inputs and
# SOURCE_DATE_EPOCH (default: 0): fixed mtimes, owners, member order, no gzip name or stamp.
# The payload is declared `tgz` (a gzip'd tar), not `vgz`: a vgz is a gzip'd vmtar, ESXi's own
# tar variant that only VMware's tools write; community VIBs built without them declare tgz.
# scripts/check-vib.py reads it back with independent tools.
set -euo pipefail

die() { echo "vib.sh: error: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: scripts/vib.sh BINARY VERSION OUTPUT.vib"
binary=$1 version=$2 output=$3
[ -f "$binary" ] || die "no binary at \`$binary\`; build it first (scripts/release.sh)"
case $version in
  *[!A-Za-z0-9.+_-]*|'') die "version \`$version\` must be letters, digits and .+_- only" ;;
esac
for tool in ar tar gzip sha256sum sha1sum stat; do
  command -v "$tool" >/dev/null || die "\`$tool\` is not installed (.ci/run installs it)"
done
epoch=${SOURCE_DATE_EPOCH:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The payload: the binary under a directory ESXi does not ship, and the init script.
init=$(dirname "$0")/esxi/statectl.init
[ -f "$init" ] || die "no init script at \`$init\`"
mkdir -p "$work/tree/opt/statectl/bin" "$work/tree/etc/init.d"
cp "$binary" "$work/tree/opt/statectl/bin/statectl"
cp "$init" "$work/tree/etc/init.d/statectl"
chmod 0755 "$work/tree/opt/statectl/bin/statectl" "$work/tree/etc/init.d/statectl"
if [ -n "${VIB_EXTRA_TREE:-}" ]; then cp -R "$VIB_EXTRA_TREE/." "$work/tree/"; fi
files=$(cd "$work/tree" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
(cd "$work/tree" && tar --format=ustar --sort=name --owner=0 --group=0 --numeric-owner \
  --mode='u+rwX,go+rX,go-w' --mtime="@$epoch" -cf "$work/payload.tar" -- *)
gzip -9 -n -c "$work/payload.tar" > "$work/statectl"

size=$(stat -c %s "$work/statectl")
sha256=$(sha256sum < "$work/statectl" | cut -d' ' -f1)
sha256_plain=$(sha256sum < "$work/payload.tar" | cut -d' ' -f1)
sha1_plain=$(sha1sum < "$work/payload.tar" | cut -d' ' -f1)
released=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%S)

# The elements and checksums VMware's VIB tooling writes for a tgz payload: sha-256 of the
# stored (compressed) bytes, sha-256 and sha-1 of the gunzip'd tar (verify-process="gunzip").
cat > "$work/descriptor.xml" <<EOF
<vib version="5.0">
  <type>bootbank</type>
  <name>statectl</name>
  <version>$version</version>
  <vendor>statectl</vendor>
  <summary>statectl: keeps the host configuration safe on the boot banks</summary>
  <description>A static statectl binary at /opt/statectl/bin/statectl: backs up, verifies and restores state.tgz and manages the boot banks. Its init script /etc/init.d/statectl points ESXi's hourly backup and shutdown hook at it at boot and at install, as [esxi] wire in /etc/statectl.toml says, and puts ESXi's files back at remove.</description>
  <release-date>$released</release-date>
  <urls/>
  <relationships>
    <depends/>
    <conflicts/>
    <replaces/>
    <provides/>
    <compatibleWith/>
  </relationships>
  <software-tags/>
  <system-requires>
    <maintenance-mode>false</maintenance-mode>
  </system-requires>
  <file-list>
$(for f in $files; do echo "    <file>$f</file>"; done)
  </file-list>
  <acceptance-level>community</acceptance-level>
  <live-install-allowed>true</live-install-allowed>
  <live-remove-allowed>true</live-remove-allowed>
  <cimom-restart>false</cimom-restart>
  <stateless-ready>true</stateless-ready>
  <overlay>false</overlay>
  <payloads>
    <payload name="statectl" type="tgz" size="$size">
      <checksum checksum-type="sha-256">$sha256</checksum>
      <checksum checksum-type="sha-256" verify-process="gunzip">$sha256_plain</checksum>
      <checksum checksum-type="sha-1" verify-process="gunzip">$sha1_plain</checksum>
    </payload>
  </payloads>
</vib>
EOF
: > "$work/sig.pkcs7"

# The ar archive by hand: the common format (names padded, no GNU trailing `/`, which some
# VIB readers reject), owner 0, mode 100644, mtime SOURCE_DATE_EPOCH, odd members padded.
ar_member() {
  local name=$1 file=$2 len
  len=$(stat -c %s "$file")
  printf '%-16s%-12s%-6s%-6s%-8s%-10s`\n' "$name" "$epoch" 0 0 100644 "$len"
  cat "$file"
  if [ $((len % 2)) -eq 1 ]; then printf '\n'; fi
}
{
  printf '!<arch>\n'
  ar_member descriptor.xml "$work/descriptor.xml"
  ar_member sig.pkcs7 "$work/sig.pkcs7"
  ar_member statectl "$work/statectl"
} > "$work/out.vib"
mkdir -p "$(dirname "$output")"
mv -f "$work/out.vib" "$output"
