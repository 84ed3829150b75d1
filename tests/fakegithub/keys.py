"""RSA key pairs generated at test time; no private key is ever committed."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class AppKeyPair:
    """A GitHub App signing key: the private half for the bot, the public half for the fake."""

    private_pem: str = field(repr=False)
    public_pem: str


def generate_app_key(bits: int = 2048) -> AppKeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return AppKeyPair(private.decode("ascii"), public.decode("ascii"))
