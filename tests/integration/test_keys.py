"""API keys: shown once, stored only as a hash, revocable (SPEC section 9)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.keys import KEY_PREFIX, Principal, authenticate, create_key, revoke_key
from app.adapters.schema import api_keys

NewKey = Callable[..., str]


@pytest.fixture
def new_key(session_factory: sessionmaker[Session]) -> NewKey:
    def create(businesses: list[str], role: str = "merchant") -> str:
        with session_factory() as session, session.begin():
            return create_key(session, businesses, role, "integration test")

    return create


def who(session_factory: sessionmaker[Session], key: str) -> Principal | None:
    with session_factory() as session:
        return authenticate(session, key)


def test_a_created_key_authenticates_with_its_businesses_and_role(
    session_factory: sessionmaker[Session], new_key: NewKey
) -> None:
    key = new_key(["1000", "2000"], "staff")
    principal = who(session_factory, key)
    assert principal is not None
    assert principal.role == "staff"
    assert principal.businesses == frozenset({"1000", "2000"})
    assert principal.prefix == key[:12]
    assert key.startswith(KEY_PREFIX)


def test_each_key_holds_only_its_own_businesses(
    session_factory: sessionmaker[Session], new_key: NewKey
) -> None:
    first, second = new_key(["1000"]), new_key(["2000"])
    principals = who(session_factory, first), who(session_factory, second)
    assert [p.businesses if p else None for p in principals] == [
        frozenset({"1000"}),
        frozenset({"2000"}),
    ]


def test_the_database_never_holds_a_key_in_clear(engine: Engine, new_key: NewKey) -> None:
    key = new_key(["1000", "2000"])
    secret = key.removeprefix(KEY_PREFIX)
    with engine.connect() as connection:
        rows = connection.execute(select(api_keys)).mappings().all()
    assert len(rows) == 2
    for row in rows:
        for column, value in row.items():
            if isinstance(value, bytes | memoryview):
                raw = bytes(value)
                assert key.encode() not in raw, column
                assert secret.encode() not in raw, column
            else:
                assert secret not in str(value), column


def test_a_revoked_key_no_longer_authenticates(
    session_factory: sessionmaker[Session], new_key: NewKey
) -> None:
    key = new_key(["1000", "2000"])
    with session_factory() as session, session.begin():
        assert revoke_key(session, key[:12]) == 2
    assert who(session_factory, key) is None


def test_revoking_one_key_leaves_the_others_alive(
    session_factory: sessionmaker[Session], new_key: NewKey
) -> None:
    revoked, kept = new_key(["1000"]), new_key(["1000"])
    with session_factory() as session, session.begin():
        revoke_key(session, revoked[:12])
    assert who(session_factory, kept) is not None


@pytest.mark.parametrize(
    "wrong",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),
        lambda key: key + "x",
        lambda key: key[:12],
        lambda key: key.removeprefix(KEY_PREFIX),
        lambda key: "",
    ],
    ids=["last-character-changed", "longer", "prefix-only", "without-prefix", "empty"],
)
def test_a_wrong_key_does_not_authenticate(
    session_factory: sessionmaker[Session], new_key: NewKey, wrong: Callable[[str], str]
) -> None:
    key = new_key(["1000"])
    assert who(session_factory, wrong(key)) is None
