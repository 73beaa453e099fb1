"""The one RSA parameter rule, shared by every package (a leaf: cryptography + errors).

A small modulus is forgeable; a huge public exponent or modulus turns every signature
check into seconds of CPU, which a client could otherwise ask a server for. The log
(`tlog.keys`), signing and verification (`attest`), policies and the private CA (`ca`)
all apply this rule, each raising its own typed error.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from mgattest.errors import InputError

RSA_PUBLIC_EXPONENT = 65537
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096


def check_rsa_parameters(public_key: object, *, what: str = "RSA key",
                         error: type[InputError] = InputError) -> None:
    """Refuse an RSA key unless ``e = 65537`` and its modulus has 2048–4096 bits.

    Other key types pass through unchecked. Raises ``error`` (an ``InputError``).
    """
    if not isinstance(public_key, rsa.RSAPublicKey):
        return
    bits = public_key.key_size
    if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
        raise error(f"{what}: RSA modulus of {bits} bits refused (allowed: "
                    f"{RSA_MIN_BITS}-{RSA_MAX_BITS} bits)", what=what)
    exponent = public_key.public_numbers().e
    if exponent != RSA_PUBLIC_EXPONENT:
        shown = exponent if exponent.bit_length() <= 64 else f"a {exponent.bit_length()}-bit number"
        raise error(f"{what}: RSA public exponent {shown} refused (only {RSA_PUBLIC_EXPONENT} "
                    "is accepted)", what=what)
