"""``rumor peer``'s start-up checks that need the graph: a graph file's size is known only then."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.config import config_from_dict
from peer.runtime.daemon import data_share
from peer.runtime.neighbours import static_neighbourhood
from protocol.errors import ConfigError


def _share(tmp_path: Path, learning: dict[str, object]) -> tuple[int, int]:
    graph = tmp_path / "swarm.edgelist"
    graph.write_text("a b\nb c\nc a\n")
    config = config_from_dict(
        {
            "identity": {"peer": "b"},
            "topology": {"file": str(graph)},
            "learning": learning,
        }
    )
    return data_share(config, static_neighbourhood(config.topology, me="b"))


def test_a_graph_file_gives_the_default_share(tmp_path: Path) -> None:
    assert _share(tmp_path, {}) == (1, 3)  # b is the second of a, b, c
    assert _share(tmp_path, {"partition_index": 2}) == (2, 3)


def test_a_partition_index_beyond_the_graph_file_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"learning\.partition_index = 65536: expected 0 to 2"):
        _share(tmp_path, {"partition_index": 65536})
