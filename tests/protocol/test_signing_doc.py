"""docs/protocol.md section 11's worked example, checked against the code byte for byte."""

import re

from blake3 import blake3

from protocol.choco import ChocoReceiver
from protocol.envelope import decode_envelope, sign_envelope
from protocol.frame import Frame
from protocol.signing import FRAME_DOMAIN, SigningKey, Trust, detach
from protocol.spec import Spec
from protocol.validation import Expectations, accept
from tests.protocol.test_envelope import DOC, doc_example_bytes, doc_example_envelope

SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def doc_trailer() -> bytes:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- example-signature -->\s*```text\n(.*?)```", text, re.DOTALL)
    assert block is not None, "docs/protocol.md lost its example-signature block"
    return bytes.fromhex(re.sub(r"\s", "", block.group(1)))


def test_the_documented_signature_is_what_the_code_writes() -> None:
    unsigned = doc_example_bytes()
    key = SigningKey.from_seed(bytes.fromhex(SECRET))
    assert key.public_bytes().hex() == PUBLIC
    text = DOC.read_text(encoding="utf-8")
    assert blake3(unsigned).hexdigest() in text
    signed = sign_envelope(doc_example_envelope(), key)
    assert signed == b"\x8d" + unsigned[1:] + doc_trailer()
    assert len(signed) == 250


def test_the_documented_signed_envelope_verifies_with_the_public_key_alone() -> None:
    signed = b"\x8d" + doc_example_bytes()[1:] + doc_trailer()
    trust = Trust({"pi-07": bytes.fromhex(PUBLIC)})
    unsigned, sig = detach(signed)
    assert unsigned == doc_example_bytes()
    trust.verify("pi-07", FRAME_DOMAIN, unsigned, sig)
    env = decode_envelope(signed, max_bytes=1024)
    expected = Expectations(
        swarm="lab",
        model=env.model,
        senders=frozenset({"pi-07"}),
        n_params=4,
        max_bytes=1024,
        trust=trust,
    )
    receiver = ChocoReceiver(4)
    receiver.apply(
        "pi-07",
        Frame(kind="key", seq=4, base=None, codec=Spec("raw"), n=4, payload=bytes(16)),
    )
    got, copy = accept(signed, expected, receiver, via="pi-07")
    assert got.sig == sig
    assert copy.tolist() == [1.5, 0.0, 0.0, -1.0]
