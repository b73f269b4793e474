import pytest

from protocol import errors
from protocol.errors import ConfigError, ProtocolError, RumorError


def test_every_protocol_error_has_a_distinct_snake_case_reason() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, ProtocolError) and obj is not ProtocolError
    ]
    reasons = {cls("x").reason for cls in classes}
    assert len(reasons) == len(classes) >= 13
    assert errors.NonFiniteValues("x").reason == "non_finite_values"


def test_config_error_is_a_value_error_in_the_tree() -> None:
    with pytest.raises(ValueError, match="bad"):
        raise ConfigError("bad")
    assert issubclass(ProtocolError, RumorError)
