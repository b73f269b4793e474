import pytest

from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec


def test_parses_name_and_typed_params() -> None:
    spec = parse_spec(" shards:k=2,alpha=0.5,flag=true,mode=fast ")
    assert spec == Spec("shards", {"k": 2, "alpha": 0.5, "flag": True, "mode": "fast"})
    assert isinstance(spec.params["k"], int)


def test_round_trips_through_str() -> None:
    assert str(parse_spec("dirichlet:alpha=0.1")) == "dirichlet:alpha=0.1"
    assert str(parse_spec("ring")) == "ring"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "invalid name"),
        ("9ring", "invalid name"),
        ("ring:d", "expected key=value"),
        ("ring:d=", "expected key=value"),
        ("ring:d=1,d=2", "given twice"),
    ],
)
def test_rejects_malformed_specs_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_spec(text)


def test_expect_names_unknown_and_accepted_params() -> None:
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) x; accepted: d, seed"):
        parse_spec("ring:x=1").expect("d", "seed")
