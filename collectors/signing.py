"""Ed25519 signatures in OpenSSH's SSHSIG format, so anyone verifies a bundle with ``ssh-keygen -Y verify``.

Why SSHSIG: ops machines have ssh-keygen; they rarely have cosign or gpg keys
set up. The format (OpenSSH PROTOCOL.sshsig) is small enough to implement here
with ``cryptography`` and is checked against the real ssh-keygen in the tests.
"""
from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NAMESPACE = "evidence-agent"
SIGNER_ID = "evidence-agent"
_MAGIC = b"SSHSIG"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"


class SignatureError(Exception):
    pass


def _s(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _read_s(buf: bytes, off: int) -> tuple[bytes, int]:
    if off + 4 > len(buf):
        raise SignatureError("truncated signature")
    (n,) = struct.unpack(">I", buf[off : off + 4])
    if off + 4 + n > len(buf):
        raise SignatureError("truncated signature")
    return buf[off + 4 : off + 4 + n], off + 4 + n


def pub_blob(pub: Ed25519PublicKey) -> bytes:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _s(b"ssh-ed25519") + _s(raw)


def pub_line(pub: Ed25519PublicKey, comment: str = SIGNER_ID) -> str:
    return "ssh-ed25519 " + base64.b64encode(pub_blob(pub)).decode() + (f" {comment}" if comment else "")


def fingerprint(pub: Ed25519PublicKey) -> str:
    """OpenSSH-style SHA256 fingerprint (as ``ssh-keygen -lf`` prints it)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(pub_blob(pub)).digest()).decode().rstrip("=")


@dataclass
class KeyPair:
    private: Ed25519PrivateKey
    path: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def keygen(path: str, overwrite: bool = False) -> KeyPair:
    """Write an OpenSSH-format private key (mode 0600) and ``path.pub`` beside it."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite a signing key")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    with open(path + ".pub", "w") as f:
        f.write(pub_line(key.public_key()) + "\n")
    return KeyPair(key, path)


def load_private(path: str) -> KeyPair:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SignatureError(f"cannot read signing key {path}: {e.strerror}") from None
    key: object  # any kind of private key until the check below
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise SignatureError(f"{path} is not an unencrypted Ed25519 private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} is not an Ed25519 key")
    return KeyPair(key, path)


def load_public(text: str) -> Ed25519PublicKey:
    """Accepts an OpenSSH public key line, or an allowed_signers line (principal first)."""
    for line in text.splitlines():
        parts = line.strip().split()
        for i, p in enumerate(parts):
            if p == "ssh-ed25519" and i + 1 < len(parts):
                blob = base64.b64decode(parts[i + 1])
                kt, off = _read_s(blob, 0)
                raw, _ = _read_s(blob, off)
                if kt != b"ssh-ed25519" or len(raw) != 32:
                    raise SignatureError("not an ssh-ed25519 key")
                return Ed25519PublicKey.from_public_bytes(raw)
    raise SignatureError("no ssh-ed25519 public key found")


def _signed_data(message: bytes, namespace: str) -> bytes:
    return _MAGIC + _s(namespace.encode()) + _s(b"") + _s(b"sha512") + _s(hashlib.sha512(message).digest())


def sign(message: bytes, key: KeyPair, namespace: str = NAMESPACE) -> str:
    sig = key.private.sign(_signed_data(message, namespace))
    blob = (_MAGIC + struct.pack(">I", 1) + _s(pub_blob(key.public)) + _s(namespace.encode()) + _s(b"")
            + _s(b"sha512") + _s(_s(b"ssh-ed25519") + _s(sig)))
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def verify(message: bytes, armored: str, namespace: str = NAMESPACE) -> Ed25519PublicKey:
    """Check an SSHSIG over ``message``; returns the signing public key (the caller decides if it trusts it)."""
    body = armored.strip()
    if not body.startswith(_BEGIN) or not body.endswith(_END):
        raise SignatureError("not an SSH signature (armor missing)")
    try:
        blob = base64.b64decode("".join(body[len(_BEGIN) : -len(_END)].split()), validate=True)
    except ValueError:
        raise SignatureError("signature is not valid base64") from None
    if not blob.startswith(_MAGIC) or blob[6:10] != struct.pack(">I", 1):
        raise SignatureError("not an SSHSIG v1 signature")
    off = 10
    pk, off = _read_s(blob, off)
    ns, off = _read_s(blob, off)
    _reserved, off = _read_s(blob, off)
    halg, off = _read_s(blob, off)
    sigblob, off = _read_s(blob, off)
    if ns.decode(errors="replace") != namespace:
        raise SignatureError(f"signature namespace {ns.decode(errors='replace')!r} is not {namespace!r}")
    if halg not in (b"sha512", b"sha256"):
        raise SignatureError("unsupported hash algorithm")
    pub = load_public("ssh-ed25519 " + base64.b64encode(pk).decode())
    st, o2 = _read_s(sigblob, 0)
    raw_sig, _ = _read_s(sigblob, o2)
    if st != b"ssh-ed25519":
        raise SignatureError("not an Ed25519 signature")
    h = hashlib.sha512(message).digest() if halg == b"sha512" else hashlib.sha256(message).digest()
    data = _MAGIC + _s(ns) + _s(b"") + _s(halg) + _s(h)
    try:
        pub.verify(raw_sig, data)
    except InvalidSignature:
        raise SignatureError("signature does not match the signed file") from None
    return pub


def same_key(a: Ed25519PublicKey, b: Ed25519PublicKey) -> bool:
    return pub_blob(a) == pub_blob(b)
