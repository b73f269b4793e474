"""peer.toml: loading, validation errors that name the key, overrides, and the TOML round trip."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peer.config import (
    BrokerConfig,
    IdentityConfig,
    LearningConfig,
    PeerConfig,
    TopologyConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    to_toml,
)
from peer.transport import Backoff, settings_from_config
from protocol.defaults import LOCAL_STEPS
from protocol.errors import ConfigError

MINIMAL = """
[identity]
peer = "pi-07"
[topology]
family = "ring"
size = 8
node = 3
"""

FULL = """
[identity]
peer = "pi-07"
swarm = "lab"
prefix = "gossip"

[broker]
host = "broker.local"
port = 8883
protocol = "3.1.1"
keepalive_s = 20
tls_ca = "certs/ca.pem"
username = "pi-07"
password_file = "secret.txt"
max_payload = 65536
reconnect_base_s = 0.25
reconnect_cap_s = 8

[topology]
file = "graph.graphml"
node = "pi-07"

[learning]
task = "fmnist"
model = "mlp:hidden=64"
partition = "dirichlet:alpha=0.1"
peers = 8
partition_index = 3
local_steps = 5
batch_size = 16
lr = 0.01
seed = 42

[gossip]
mode = "async"
round_timeout_s = 2.5
staleness_bound = 3
codec = "topk:fraction=0.01"
gamma = 0.4
keyframe_interval = 20
rounds = 100

[storage]
checkpoint_dir = "state"
checkpoint_every = 2

[limits]
max_message_bytes = 1048576

[logging]
level = "DEBUG"
file = "peer.log"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "peer.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def full(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "secret.txt").write_text("hunter2\nignored second line\n")
    (tmp_path / "graph.graphml").write_text("<graphml/>")
    return write(tmp_path, FULL)


def test_minimal_config_takes_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.identity == IdentityConfig(peer="pi-07", swarm="default", prefix="rumor")
    assert config.topology == TopologyConfig(family="ring", size=8, node=3)
    assert config.broker == BrokerConfig()
    assert (config.gossip.mode, config.gossip.codec, config.gossip.rounds) == ("sync", "raw", None)
    assert config.storage.checkpoint_dir is None


def test_full_config_loads_with_paths_relative_to_the_file(full: Path) -> None:
    config = load_config(full)
    assert config.broker.tls_ca == full.parent / "certs" / "ca.pem"
    assert config.storage.checkpoint_dir == full.parent / "state"
    assert config.topology.node == "pi-07"
    assert config.broker.reconnect_cap_s == 8.0
    assert isinstance(config.broker.reconnect_cap_s, float)
    assert config.broker.read_password() == "hunter2"
    assert config.gossip.gamma == 0.4


def test_transport_settings_follow_the_config(full: Path) -> None:
    s = settings_from_config(load_config(full))
    again = settings_from_config(load_config(full))
    assert re.fullmatch(r"rumor-lab-pi-07-[0-9a-f]{8}", s.client_id)
    assert again.client_id != s.client_id, "a random suffix: no one can take this id over"
    assert (s.host, s.port, s.protocol) == (
        "broker.local",
        8883,
        "3.1.1",
    )
    assert (s.username, s.password, s.max_payload) == ("pi-07", "hunter2", 65536)
    assert s.max_message_bytes == 1048576
    assert s.backoff == Backoff(base_s=0.25, cap_s=8.0)


@pytest.mark.parametrize("show_secrets", [True, False])
def test_to_toml_round_trips_through_the_loader(full: Path, show_secrets: bool) -> None:
    config = load_config(full)
    printed = full.parent / "printed.toml"
    printed.write_text(to_toml(config, show_secrets=show_secrets))
    assert load_config(printed) == config


def test_printed_config_hides_an_inline_password_unless_asked(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    config = replace(config, broker=replace(config.broker, username="u", password="s3cr3t"))
    assert "s3cr3t" not in to_toml(config)
    again = config_from_dict(__import__("tomllib").loads(to_toml(config, show_secrets=True)))
    assert again == config


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    username=st.text(min_size=1, max_size=20),
    password=st.text(min_size=1, max_size=20),
    lr=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_round_trip_keeps_any_string_and_number(
    tmp_path: Path, username: str, password: str, lr: float, seed: int
) -> None:
    base = load_config(write(tmp_path, MINIMAL))
    config = replace(
        base,
        broker=replace(base.broker, username=username, password=password),
        learning=replace(base.learning, lr=lr, seed=seed),
    )
    printed = tmp_path / "printed.toml"
    printed.write_text(to_toml(config, show_secrets=True), encoding="utf-8")
    assert load_config(printed) == config


ERRORS = [
    # (text appended to MINIMAL or replacing it, expected message fragment)
    ("[gossip]\nroundz = 5", "gossip.roundz: unknown key; did you mean 'rounds'?"),
    ("[gosip]\nrounds = 5", "gosip: unknown key; did you mean 'gossip'?"),
    ("[gossip]\nrounds = 0", "gossip.rounds = 0: expected an int >= 1"),
    (
        "[gossip]\nround_timeout_s = -1",
        "gossip.round_timeout_s = -1.0: expected a finite number > 0",
    ),
    ("[gossip]\nround_timeout_s = inf", "gossip.round_timeout_s = inf: expected a finite number"),
    ("[gossip]\nrounds = 2.5", "gossip.rounds = 2.5: expected an int"),
    ("[gossip]\nrounds = true", "gossip.rounds = True: expected an int"),
    ('[gossip]\nmode = "lazy"', "gossip.mode = 'lazy': expected one of 'sync', 'async'"),
    ('[gossip]\ncodec = "topk:fraction"', "gossip.codec: invalid parameter 'fraction' in"),
    ("[gossip]\ngamma = 1.5", "gossip.gamma = 1.5: expected a number in (0, 1]"),
    ("[broker]\nport = 70000", "broker.port = 70000: expected 1 to 65535"),
    ("[broker]\nprotocol = 5", "broker.protocol = 5: expected one of '3.1.1', '5'"),
    ('[broker]\ntls_cert = "c.pem"', "broker.tls_key = None: expected set with tls_cert"),
    ('[broker]\npassword = "x"', "broker.username = None: expected set with a password"),
    (
        '[broker]\nusername = "u"\npassword = "x"\npassword_file = "f"',
        "broker.password_file = '{dir}/f': expected unset when password is set",
    ),
    (
        '[broker]\ntls_ca = "nope.pem"',
        "broker.tls_ca = '{dir}/nope.pem': expected an existing file",
    ),
    ("[broker]\nmax_payload = 100", "broker.max_payload = 100: expected 256 to 268435455 bytes"),
    ("[learning]\npeers = 4\npartition_index = 4", "learning.partition_index = 4: expected 0 to 3"),
    ('[learning]\ntask = "a b"', "learning.task: unknown task 'a b'; expected one of consensus"),
    (
        '[learning]\ndata_path = "missing"',
        "learning.data_path = '{dir}/missing': expected an existing directory",
    ),
    (
        '[learning]\ndata = "/usr/share/datasets"',
        "learning.data = '/usr/share/datasets': expected a data plug-in",
    ),
    ('[logging]\nlevel = "debug"', "logging.level = 'debug': expected one of 'DEBUG'"),
    ("[storage]\ncheckpoint_every = 0", "storage.checkpoint_every = 0: expected an int >= 1"),
    ("[learning]\neval_every = 0", "learning.eval_every = 0: expected an int >= 1 (rounds)"),
    ("[limits]\nmax_message_bytes = 10", "limits.max_message_bytes = 10: expected an int >= 1024"),
    ('[identity]\npeer = "a/b"', "identity.peer = 'a/b': expected a single MQTT topic level"),
    ("gossip = 3", "gossip = 3: expected a table [gossip]"),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS)
def test_errors_name_the_key_the_value_and_what_is_accepted(
    tmp_path: Path, extra: str, message: str
) -> None:
    text = MINIMAL + "\n" + extra
    if extra.startswith("[identity]"):
        text = MINIMAL.replace('[identity]\npeer = "pi-07"', extra)
    if not extra.startswith("["):
        text = extra + "\n" + MINIMAL
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message.format(dir=tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        ('family = "ring"\nsize = 8\nnode = 1\nmembership = true', "family, membership"),
        ('file = "g.txt"\nfamily = "ring"', "file, family"),
        ("seed = 3", "topology = 'nothing': expected exactly one of file, family"),
        ('family = "ring"\nnode = 1', "topology.size = None: expected an int >= 2"),
        ('family = "ring"\nsize = 8', "topology.node = None: expected this peer's node index"),
        ('family = "ring"\nsize = 8\nnode = 8', "topology.node = 8: expected 0 to 7"),
        ("membership = true\nsize = 4", "topology.size = 4: expected unset unless family"),
        (
            'family = "exponential:directed=true"\nsize = 8\nnode = 1',
            "topology.family: 'exponential:directed=true' builds a directed graph; a peer mixes "
            "with Metropolis weights",
        ),
    ],
)
def test_topology_needs_exactly_one_consistent_source(
    tmp_path: Path, topology: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, f'[identity]\npeer = "p"\n[topology]\n{topology}\n'))


def test_missing_required_values_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"identity\.peer: missing; expected a string"):
        load_config(write(tmp_path, "[identity]\n[topology]\nmembership = true\n"))
    with pytest.raises(ConfigError, match=r"\[topology\]: missing"):
        load_config(write(tmp_path, '[identity]\npeer = "p"\n'))
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[identity\n"))


def test_overrides_parse_values_by_the_key_type(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + '[storage]\ncheckpoint_dir = "ck"\n'))
    changed = apply_overrides(
        config,
        [
            "gossip.rounds=50",
            "gossip.round_timeout_s = 3",
            "broker.protocol=3.1.1",
            "identity.peer=pi-08",
            "gossip.codec=topk:fraction=0.05",
            'identity.swarm="lab"',
            "storage.checkpoint_dir=",
            "topology.node=5",
        ],
    )
    assert changed.gossip.rounds == 50
    assert changed.gossip.round_timeout_s == 3.0
    assert changed.broker.protocol == "3.1.1"
    assert (changed.identity.peer, changed.identity.swarm) == ("pi-08", "lab")
    assert changed.gossip.codec == "topk:fraction=0.05"
    assert changed.storage.checkpoint_dir is None
    assert changed.topology.node == 5
    assert changed.learning == config.learning
    assert apply_overrides(config, ["broker.protocol=5"]).broker.protocol == "5"
    assert apply_overrides(config, []) == config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("gossip.rounds", r"override 'gossip.rounds': expected section.key=value"),
        ("rounds=5", r"expected section.key=value"),
        ("gossip.roundz=5", r"gossip.roundz: unknown key; did you mean 'rounds'\?"),
        ("gossp.rounds=5", r"gossp: unknown key; did you mean 'gossip'\?"),
        ("gossip.rounds=many", r"gossip.rounds = 'many': expected an int"),
        ("gossip.mode=", r"gossip.mode = '': expected one of 'sync', 'async'"),
        ("identity.peer=", r"identity.peer = '': expected a single MQTT topic level"),
    ],
)
def test_bad_overrides_are_refused(tmp_path: Path, override: str, message: str) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match=message):
        apply_overrides(config, [override])


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ConfigError, match=r"identity\.swarm = '\$SYS'"):
        IdentityConfig(peer="p", swarm="$SYS")
    config = PeerConfig(
        identity=IdentityConfig(peer="p"),
        topology=TopologyConfig(membership=True),
        learning=LearningConfig(peers=4, partition_index=1),
    )
    assert config.learning.local_steps == LOCAL_STEPS


def test_password_file_problems_name_the_key(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    broker = BrokerConfig(username="u", password_file=empty)
    with pytest.raises(ConfigError, match=r"broker\.password_file = .*empty\.txt.*first line"):
        broker.read_password()
    gone = BrokerConfig(username="u", password_file=tmp_path / "gone")
    with pytest.raises(ConfigError, match=r"broker\.password_file = .*a readable text file"):
        gone.read_password()


def test_the_documented_example_is_a_valid_config(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_config(write(tmp_path, example))
    assert config == PeerConfig(
        identity=IdentityConfig(peer="pi-07"),
        topology=TopologyConfig(family="ring", size=8, node=3),
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "[learning]\npartition_index = 65536",
            "learning.partition_index = 65536: expected 0 to 7 (one of learning.peers = 8 "
            "partitions, from topology.size)",
        ),
        (
            "[learning]\npeers = 4\npartition_index = 4",
            "learning.partition_index = 4: expected 0 to 3",
        ),
        ("[learning]\npeers = 3", "learning.peers = 3: expected > topology.node = 3"),
        (
            '[gossip]\ncodec = "bogus"',
            "gossip.codec: unknown codec 'bogus'; expected one of raw, fp16, int8, topk, sign, "
            "randk",
        ),
        ('[gossip]\ncodec = "topk:fraction=2"', "gossip.codec: topk: fraction=2 out of range"),
        ('[gossip]\ncodec = "int8:bits=4"', "gossip.codec: int8: unknown parameter"),
        (
            '[gossip]\naggregator = "krum"',
            "gossip.aggregator: unknown aggregator 'krum'; expected one of mean, clip, "
            "trimmed_mean, median",
        ),
        ('[gossip]\naggregator = "clip:tau=0"', "gossip.aggregator: clip: tau=0 out of range"),
        ('[learning]\nmodel = "rnn"', "learning.model: unknown model 'rnn'"),
        ('[learning]\nmodel = "mlp:hidden=0"', "learning.model: mlp: hidden must be a positive"),
        ('[learning]\npartition = "dirichlet"', "learning.partition: dirichlet needs alpha="),
        ('[learning]\npartition = "halves"', "learning.partition: unknown partition 'halves'"),
    ],
)
def test_shares_and_specs_are_checked_on_loading_naming_the_key(
    tmp_path: Path, section: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + section + "\n"))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("torus", "topology.family: torus: n = 6 is not a perfect square"),
        ("hypercube", "topology.family: hypercube: n = 6 is not a power of two"),
        ("tree", "topology.family: unknown topology 'tree'"),
    ],
)
def test_a_family_that_cannot_be_built_on_size_nodes_is_refused(
    tmp_path: Path, family: str, message: str
) -> None:
    text = f'[identity]\npeer = "p1"\n[topology]\nfamily = "{family}"\nsize = 6\nnode = 1\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)


def test_loading_a_config_imports_no_torch() -> None:
    code = (
        "import sys; from peer.config import config_from_dict; "
        "config_from_dict({'identity': {'peer': 'p1'}, 'topology': {'family': 'ring', "
        "'size': 4, 'node': 1}, 'gossip': {'codec': 'topk:fraction=0.1'}}); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("missing", ["peers", "partition_index"])
def test_membership_needs_an_explicit_data_share(missing: str) -> None:
    learning = {"peers": 4, "partition_index": 1}
    del learning[missing]
    with pytest.raises(
        ConfigError, match=rf"learning\.{missing}: required with topology\.membership"
    ):
        config_from_dict(
            {"identity": {"peer": "a"}, "topology": {"membership": True}, "learning": learning}
        )
