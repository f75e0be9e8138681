"""The suite runs against the build it claims to test (CI runs it pure and compiled)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import signaling
from tests.perf.hotpath import compiled

EXPECT = os.environ.get("SIGNALING_EXPECT_COMPILED")


@pytest.mark.skipif(EXPECT is None, reason="SIGNALING_EXPECT_COMPILED unset: either build")
def test_the_package_under_test_is_the_expected_build() -> None:
    source_tree = Path(__file__).resolve().parents[2] / "signaling"
    if EXPECT == "1":
        assert compiled(), signaling.__file__
        # The installed wheel, never the source tree (whose .py would shadow nothing
        # compiled, and vice versa).
        assert Path(signaling.__file__).resolve().parent != source_tree
    else:
        assert not compiled(), signaling.__file__
