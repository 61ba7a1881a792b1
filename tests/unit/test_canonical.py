"""Canonical helpers that several formats rely on."""

import pytest

from translators.canonical import (
    Reasoning,
    custom_input,
    pack_signature,
    unpack_signature,
)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"input":"*** Begin Patch\\n*** End Patch"}', "*** Begin Patch\n*** End Patch"),
        ('{"input": "spaced"}', "spaced"),
        ('{"input":"*** Begin Patch\\n*** Add Fi', "*** Begin Patch\n*** Add Fi"),  # cut by max_tokens
        ('{"input":"ends in an escape\\', "ends in an escape"),
        ('{"other":1}', '{"other":1}'),
        ("raw text", "raw text"),
    ],
)
def test_custom_input_unwraps_even_truncated_calls(arguments, expected):
    assert custom_input(arguments) == expected


def test_envelope_roundtrip_and_tampered_values():
    packed = pack_signature(Reasoning(provenance="anthropic_messages", signature="sig", redacted=None, item_id="rs_1"))
    assert unpack_signature(packed) == {"p": "anthropic_messages", "s": "sig", "i": "rs_1"}
    assert unpack_signature("wshift1.eyJwIjoxLCJzIjo1fQ") is None  # {"p":1,"s":5}: not ours
    assert unpack_signature("EqQBreal-anthropic-signature") is None
