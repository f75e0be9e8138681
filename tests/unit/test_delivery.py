from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from signaling.core import events as e
from signaling.core.delivery import encode, signal_recipients, visible_to


def test_v1_sees_only_signals_and_never_v2_fields() -> None:
    sig = e.SignalRelayed(5, "a", '{"k":1}', None, 0)
    assert visible_to("b", 1, sig) and not visible_to("a", 1, sig)
    assert encode(sig, 1, "1234") == '{"type":"signal","senderId":"a","payload":{"k":1}}'
    for event in (
        e.PeerJoined(2, "c", 2, "", 0),
        e.PeerLeft(3, "c", "left", 0),
        e.RoomExpired(4, 0),
    ):
        assert not visible_to("b", 1, event)
        assert visible_to("b", 2, event)


def test_directed_signals_reach_only_their_target() -> None:
    sig = e.SignalRelayed(5, "a", "1", "c", 0)
    assert visible_to("c", 2, sig) and not visible_to("b", 2, sig)
    assert encode(sig, 2, "1") == '{"type":"signal","senderId":"a","payload":1,"seq":5}'


def test_nobody_hears_about_themselves() -> None:
    assert not visible_to("c", 2, e.PeerJoined(2, "c", 2, "", 0))
    assert not visible_to("c", 2, e.PeerLeft(2, "c", "left", 0))
    assert not visible_to("c", 2, e.PeerDetached(2, "c", 0))


@given(
    st.lists(st.sampled_from("abcde"), unique=True),
    st.sampled_from("abcdef"),
    st.none() | st.sampled_from("abcdef"),
)
def test_signal_recipients_is_visible_to_over_the_attached_members(
    attached: list[str], sender: str, to: str | None
) -> None:
    """The hot path's lookup and the replay predicate are one rule."""
    sig = e.SignalRelayed(1, sender, "1", to, 0)
    members = {peer: f"conn-{peer}" for peer in attached}
    expected = [members[p] for p in attached if visible_to(p, 2, sig) and visible_to(p, 1, sig)]
    assert signal_recipients(sig, members) == expected
