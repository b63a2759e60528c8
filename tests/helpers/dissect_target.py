#!/usr/bin/env python3
"""Opens a boot bank the way ESXi does, with the independent forensic reader dissect.target:
its ESXi plugin reads boot.cfg, layers every module named in modules= (state.tgz included),
mounts local.tgz (or decrypts local.tgz.ve with the key store) over them, then reads esx.conf
and the ConfigStore copy. Used by tests/integration/dissect_target.rs as an oracle.

The bank directory is given to dissect.target as a filesystem of a bare target (a real bank is
a FAT partition; its directory loader only knows whole OS trees), then the target's plugins run.

Usage: dissect_target.py BANK_DIR COMPONENT...
Prints one JSON object: os, hostname, ips, users, shadow (user -> password field) and
configstore (component/group/name/identifier -> user_value, for the ConfigStore components
named). Exit 77 when dissect.target is
missing, 1 when the bank does not open as an ESXi host.
"""
import json
import sys
from pathlib import Path

try:
    from dissect.target.filesystems.dir import DirectoryFilesystem
    from dissect.target.target import Target
except ImportError:
    print("the python3 module dissect.target, which is not installed", file=sys.stderr)
    sys.exit(77)


def configstore(target, components):
    values = {}
    if not target.has_function("configstore.get"):
        return values
    for component in components:
        groups = target.configstore.get(component, {})
        for group, names in groups.items():
            for name, identifiers in names.items():
                for identifier, record in identifiers.items():
                    values[f"{component}/{group}/{name}/{identifier}"] = record["user_value"]
    return values


def main(bank, components):
    target = Target()
    target.filesystems.add(DirectoryFilesystem(Path(bank)))
    target.apply()
    if target.os != "esxi":
        sys.exit(f"{bank} does not open as an ESXi host (os: {target.os})")
    shadow = {}
    path = target.fs.path("/etc/shadow")
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 1:
                shadow[fields[0]] = fields[1]
    print(json.dumps({
        "os": target.os,
        "hostname": target.hostname,
        "ips": sorted(target.ips),
        "users": [user.name for user in target.users()],
        "shadow": shadow,
        "configstore": configstore(target, components),
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
