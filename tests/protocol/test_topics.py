import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ConfigError, MalformedMessage
from protocol.topics import (
    MAX_ID_BYTES,
    QOS,
    RETAINED,
    check_id,
    id_problem,
    parse_topic,
    subscription,
    topic,
)

KINDS = ("key", "delta", "presence", "telemetry")

# Names a peer may use: any non-control character except the MQTT separators and wildcards.
names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="/+#", min_codepoint=0x20
    ),
    min_size=1,
    max_size=16,
).filter(lambda s: not s.startswith("$"))


@given(kind=st.sampled_from(KINDS), swarm=names, peer=names)
def test_built_topics_parse_back_to_their_parts(kind: str, swarm: str, peer: str) -> None:
    text = topic(kind, swarm=swarm, peer=peer)  # type: ignore[arg-type]
    assert text == "rumor/" + swarm + "/" + kind + "/" + peer
    assert parse_topic(text) == (kind, swarm, peer)


def test_custom_prefix_is_part_of_the_topic_and_checked_when_parsing() -> None:
    text = topic("delta", prefix="lab3", swarm="s", peer="p")
    assert text == "lab3/s/delta/p"
    assert parse_topic(text, prefix="lab3") == ("delta", "s", "p")
    with pytest.raises(MalformedMessage, match="prefix 'lab3'; expected 'rumor'"):
        parse_topic(text)


def test_qos_and_retain_follow_the_design_table() -> None:
    assert QOS == {"key": 1, "delta": 1, "presence": 1, "telemetry": 0}
    assert RETAINED == {"key": True, "delta": False, "presence": True, "telemetry": False}


def test_subscription_is_a_single_level_wildcard_over_peers() -> None:
    assert subscription("presence", swarm="lab") == "rumor/lab/presence/+"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("a/b", "contains '/'"),
        ("a+", "contains '+'"),
        ("#", "contains '#'"),
        ("a\x00b", "contains '\\x00'"),
        ("tab\there", "contains '\\t'"),
        ("$SYS", "starts with '$'"),
        ("x" * (MAX_ID_BYTES + 1), "is 65 UTF-8 bytes long; expected at most 64"),
        ("é" * 33, "is 66 UTF-8 bytes long"),
        ("\ud800", "not valid UTF-8"),
    ],
)
def test_bad_names_are_config_errors_naming_value_and_reason(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)) as info:
        check_id(value, what="peer")
    assert str(info.value).startswith("peer " + repr(value)[:20])


def test_names_at_the_length_bound_are_accepted() -> None:
    assert check_id("x" * MAX_ID_BYTES, what="peer") == "x" * 64
    assert check_id("é" * 32, what="peer") == "é" * 32  # 2 bytes each in UTF-8
    assert id_problem(7) == "is a int; expected a string"


def test_topic_builder_refuses_bad_kind_and_bad_names() -> None:
    with pytest.raises(ConfigError, match="topic kind 'model' unknown"):
        topic("model", swarm="s", peer="p")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="swarm 'a/b' contains '/'"):
        topic("key", swarm="a/b", peer="p")
    with pytest.raises(ConfigError, match="prefix '' is empty"):
        subscription("key", prefix="", swarm="s")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("rumor/lab/key", "has 3 levels"),
        ("rumor/lab/key/a/b", "has 5 levels"),
        ("other/lab/key/a", "prefix 'other'"),
        ("rumor/lab/keys/a", "kind 'keys' unknown"),
        ("rumor/lab/key/", "peer '' is empty"),
        ("rumor//key/a", "swarm '' is empty"),
        ("rumor/lab/key/+", "peer '+' contains '+'"),
        ("rumor/lab/key/$x", "starts with '$'"),
        ("", "has 1 levels"),
    ],
)
def test_foreign_topics_are_malformed_messages(text: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=re.escape(reason)):
        parse_topic(text)
