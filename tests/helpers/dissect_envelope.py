#!/usr/bin/env python3
"""Opens a state.tgz holding local.tgz.ve + encryption.info (or .#encryption.info) with the independent reader of
dissect.hypervisor (Envelope + KeyStore, pycryptodome for AES-GCM) and writes the decrypted
local.tgz. Used by tests/integration/encrypted.rs as an oracle for statectl's encoder.

Usage: dissect_envelope.py STATE_TGZ OUT_LOCAL_TGZ
Exit 0 and prints the key id; exit 77 when dissect.hypervisor or pycryptodome is missing.
"""
import io
import sys
import tarfile

try:
    from dissect.hypervisor.util.envelope import HAS_PYCRYPTODOME, Envelope, KeyStore
except ImportError:
    print("the python3 module dissect.hypervisor, which is not installed", file=sys.stderr)
    sys.exit(77)

if not HAS_PYCRYPTODOME:
    print("the python3 module pycryptodome, which is not installed", file=sys.stderr)
    sys.exit(77)


def main(state_path: str, out_path: str) -> None:
    members = {}
    with tarfile.open(state_path, "r:gz") as outer:
        for member in outer.getmembers():
            name = member.name.removeprefix("./")
            if name in ("local.tgz.ve", "encryption.info", ".#encryption.info"):
                members[name.removeprefix(".#")] = outer.extractfile(member).read()
    store = KeyStore.from_text(members["encryption.info"].decode())
    envelope = Envelope(io.BytesIO(members["local.tgz.ve"]))
    plain = envelope.decrypt(store.key, aad=b"ESXConfiguration")
    with open(out_path, "wb") as out:
        out.write(plain)
    print(store.id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
