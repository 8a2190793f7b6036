"""Our Community ID against the reference implementation (the ``communityid`` package)."""

from __future__ import annotations

import communityid
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.community_id import community_id

REFERENCE = communityid.CommunityID()
addresses4 = st.binary(min_size=4, max_size=4)
addresses6 = st.binary(min_size=16, max_size=16)
ports = st.integers(0, 65535)
icmp_types = st.integers(0, 255) | st.sampled_from([0, 8, 9, 10, 13, 14, 15, 16, 17, 18])
icmp6_types = st.integers(0, 255) | st.sampled_from(
    [128, 129, 130, 131, 133, 134, 135, 136, 139, 140, 144, 145]
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(
        st.tuples(st.sampled_from([6, 17, 132]), addresses4, addresses4, ports, ports),
        st.tuples(st.sampled_from([6, 17, 132]), addresses6, addresses6, ports, ports),
        st.tuples(st.just(1), addresses4, addresses4, icmp_types, st.integers(0, 255)),
        st.tuples(st.just(58), addresses6, addresses6, icmp6_types, st.integers(0, 255)),
        # the same address on both sides: ordering falls to the ports
        addresses4.flatmap(lambda a: st.tuples(st.just(6), st.just(a), st.just(a), ports, ports)),
    ),
    st.integers(0, 65535),
)
def test_agrees_with_the_reference(flow: tuple[int, bytes, bytes, int, int], seed: int) -> None:
    proto, src, dst, sport, dport = flow
    expected = communityid.CommunityID(seed=seed).calc(
        communityid.FlowTuple(proto, src, dst, sport, dport)
    )
    assert expected == community_id(proto, src, dst, sport, dport, seed)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.sampled_from([47, 50, 51, 2]), addresses4, addresses4)
def test_agrees_for_protocols_without_ports(proto: int, src: bytes, dst: bytes) -> None:
    assert REFERENCE.calc(communityid.FlowTuple(proto, src, dst)) == community_id(proto, src, dst)
