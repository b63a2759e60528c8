#!/usr/bin/env python3
"""Reads a statectl VIB back with tools independent of the builder (scripts/vib.sh):
binutils `ar` for the members, xml.etree for descriptor.xml, hashlib for the checksums and
Python's tarfile for the payload. Usage: check-vib.py FILE.vib [EXPECTED_BINARY].
Prints one line per check and the VIB's files; exits 1 naming the first check that failed.
Every payload path must be one a community-level VIB may ship (VMware's extensibility rules,
ESXI.md): never sbin/, bin/ or etc/rc.local.d/ (partner level), nothing over ESXi's own files."""

import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET

BINARY = "opt/statectl/bin/statectl"
INIT = "etc/init.d/statectl"
# Where a community-level VIB may put files (vib20-extensibility.rng of esximage 6.7).
COMMUNITY = (
    "opt/",
    "etc/init.d/",
    "etc/vmware/firewall/",
    "etc/vmware/service/",
    "etc/vmware/shutdown/shutdown.d/",
    "etc/vmware/vm-support/",
    "etc/cim/",
    "etc/config/",
    "usr/lib/vmware/",
    "usr/lib64/vmware/",
    "usr/lib/cim/",
    "var/lib/sfcb/registration/",
)


def fail(message):
    print(f"check-vib: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def ok(message):
    print(f"check-vib: ok: {message}")


def ar_members(vib):
    listing = subprocess.run(["ar", "t", vib], capture_output=True, text=True)
    if listing.returncode != 0:
        fail(f"`ar t {vib}` failed: {listing.stderr.strip()}")
    return listing.stdout.split()


def ar_read(vib, member):
    return subprocess.run(["ar", "p", vib, member], capture_output=True, check=True).stdout


def text_of(root, tag):
    node = root.find(tag)
    if node is None or node.text is None:
        fail(f"descriptor.xml has no <{tag}>")
    return node.text.strip()


def check_descriptor(root):
    expected = {
        "type": "bootbank",
        "name": "statectl",
        "acceptance-level": "community",
        "live-install-allowed": "true",
        "live-remove-allowed": "true",
        "stateless-ready": "true",
    }
    for tag, value in expected.items():
        if text_of(root, tag) != value:
            fail(f"<{tag}> is `{text_of(root, tag)}`, expected `{value}`")
    for tag in ("version", "vendor", "summary", "description", "release-date"):
        text_of(root, tag)
    if text_of(root, "overlay") != "false":
        fail("<overlay> is not false (a community VIB may not overlay ESXi files)")
    ok("descriptor.xml parses: bootbank, community, live install/remove, stateless-ready")
    return [f.text for f in root.findall("file-list/file")]


def allowed(name):
    """True when a community VIB may ship `name` (a directory on the way to one too)."""
    if ".." in name.split("/") or name.startswith("/"):
        return False
    if any(name.startswith(prefix) for prefix in COMMUNITY):
        return True
    return any(prefix.startswith(name.rstrip("/") + "/") for prefix in COMMUNITY)


def check_payload(vib, element):
    name, kind = element.get("name"), element.get("type")
    if kind != "tgz":
        fail(f"payload `{name}` has type `{kind}`, expected tgz")
    stored = ar_read(vib, name)
    if int(element.get("size", "-1")) != len(stored):
        fail(f"payload `{name}`: size {element.get('size')} in descriptor, {len(stored)} in ar")
    try:
        plain = gzip.decompress(stored)
    except (OSError, EOFError) as err:
        fail(f"payload `{name}` is not gzip: {err}")
    sums = {}
    for checksum in element.findall("checksum"):
        key = (checksum.get("checksum-type"), checksum.get("verify-process") or "")
        data = plain if key[1] == "gunzip" else stored
        algorithm = {"sha-256": "sha256", "sha-1": "sha1"}.get(key[0])
        if algorithm is None or key[1] not in ("", "gunzip"):
            fail(f"payload `{name}`: unexpected checksum {key}")
        actual = hashlib.new(algorithm, data).hexdigest()
        if checksum.text.strip() != actual:
            fail(f"payload `{name}`: {key[0]} {key[1] or 'stored'} is {checksum.text}, recomputed {actual}")
        sums[key] = actual
    wanted = {("sha-256", ""), ("sha-256", "gunzip"), ("sha-1", "gunzip")}
    if set(sums) != wanted:
        fail(f"payload `{name}` checksums are {sorted(sums)}, expected {sorted(wanted)}")
    ok(f"payload `{name}`: size {len(stored)}, sha-256 (stored, gunzip) and sha-1 (gunzip) recomputed")
    return stored


def check_tree(stored, expected_binary, listed):
    with tarfile.open(fileobj=io.BytesIO(stored), mode="r:gz") as tar:
        members = tar.getmembers()
        files = sorted(m.name for m in members if m.isfile())
        print(f"check-vib: files: {' '.join(files)}")
        for member in members:
            if not allowed(member.name):
                fail(
                    f"payload entry `{member.name}` is outside the paths a community VIB may ship "
                    f"({', '.join(COMMUNITY)})"
                )
            if member.uid != 0 or member.gid != 0 or not (member.isfile() or member.isdir()):
                fail(f"payload entry `{member.name}` is not a root-owned file or directory")
        if sorted(listed) != files:
            fail(f"<file-list> {sorted(listed)} is not the payload's files {files}")
        for name in (BINARY, INIT):
            try:
                member = tar.getmember(name)
            except KeyError:
                fail(f"the payload has no {name}")
            if member.mode != 0o755:
                fail(f"{name} has mode {member.mode:o}, expected 755")
        content = tar.extractfile(tar.getmember(BINARY)).read()
    if expected_binary is not None:
        with open(expected_binary, "rb") as f:
            if f.read() != content:
                fail(f"{BINARY} in the payload differs from {expected_binary}")
    ok(f"payload holds {len(members)} entries, all on community paths; {BINARY} and {INIT} 0755 root:root")


def main():
    if len(sys.argv) not in (2, 3):
        fail("usage: check-vib.py FILE.vib [EXPECTED_BINARY]")
    vib = sys.argv[1]
    with open(vib, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            fail(f"{vib} is not an ar archive")
    members = ar_members(vib)
    if members[:2] != ["descriptor.xml", "sig.pkcs7"]:
        fail(f"ar members are {members}: descriptor.xml and sig.pkcs7 must come first")
    if ar_read(vib, "sig.pkcs7") != b"":
        fail("sig.pkcs7 is not empty (a community VIB is unsigned)")
    ok(f"ar members in order: {' '.join(members)}; sig.pkcs7 empty")
    try:
        root = ET.fromstring(ar_read(vib, "descriptor.xml"))
    except ET.ParseError as err:
        fail(f"descriptor.xml does not parse: {err}")
    listed = check_descriptor(root)
    payloads = root.findall("payloads/payload")
    if [p.get("name") for p in payloads] != members[2:]:
        fail(f"descriptor payloads {[p.get('name') for p in payloads]} != ar members {members[2:]}")
    for element in payloads:
        expected = sys.argv[2] if len(sys.argv) == 3 else None
        check_tree(check_payload(vib, element), expected, listed)


if __name__ == "__main__":
    main()
