"""Shamir sharing (split / combine as srs1-... texts), the Shamir root-key
protector, and root-key rotation (async and blocking)."""

import asyncio

import pytest
import strongroom


def altered(text: str) -> str:
    last = text[-1]
    return text[:-1] + ("B" if last == "A" else "A")


def test_split_and_combine_any_threshold_of_the_shares():
    shares = strongroom.shamir_split(b"launch code", 3, 5)
    assert len(shares) == 5 and all(s.startswith("srs1-") for s in shares)
    for pick in ([0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]):
        got = strongroom.shamir_combine([shares[i] for i in pick])
        assert isinstance(got, strongroom.Secret) and got.reveal() == b"launch code"
    secret = strongroom.Secret(b"\x00\xffbinary")
    assert strongroom.shamir_combine(strongroom.shamir_split(secret, 2, 2)).reveal() == b"\x00\xffbinary"


def test_bad_shares_raise_typed_errors():
    shares = strongroom.shamir_split(b"launch code", 3, 5)
    other = strongroom.shamir_split(b"launch code", 3, 5)
    cases = [
        (shares[:2], strongroom.ShamirTooFewShares),
        ([], strongroom.ShamirNoShares),
        ([shares[0], shares[0], shares[1]], strongroom.ShamirDuplicateShare),
        ([shares[0], shares[1], other[2]], strongroom.ShamirDifferentSplits),
        ([shares[0], shares[1], altered(shares[2])], strongroom.ShamirCorruptShare),
        ([shares[0], shares[1], "not a share"], strongroom.ShamirCorruptShare),
    ]
    for given, error in cases:
        with pytest.raises(error) as e:
            strongroom.shamir_combine(given)
        assert isinstance(e.value, strongroom.ShamirError)
    for k, n in [(1, 3), (4, 3), (0, 2)]:
        with pytest.raises(strongroom.ShamirInvalidParameters):
            strongroom.shamir_split(b"x", k, n)
    with pytest.raises(strongroom.ShamirInvalidParameters):
        strongroom.shamir_split(b"", 2, 3)
    for k, n in [(2, 256), (-1, 3)]:
        with pytest.raises(strongroom.InvalidArgument):
            strongroom.shamir_split(b"x", k, n)


def test_rotate_the_root_key_to_shamir_shares_and_unseal_with_them(tmp_path, key_file):
    db = tmp_path / "s.db"
    software = strongroom.SoftwareProtector.from_key_file(key_file)

    async def go():
        sr = await strongroom.Strongroom.init(strongroom.Storage.sqlite(db), software)
        await sr.put_secret("db/pw", b"hunter2")
        shamir, shares = strongroom.ShamirProtector.generate(2, 3)
        assert shamir.threshold == 2 and len(shares) == 3 and "srs1-" not in repr(shamir)
        await sr.rotate_root_key(shamir)
        assert (await sr.get_secret("db/pw"))[1].reveal() == b"hunter2"
        sr.close()

        with pytest.raises(strongroom.StrongroomError):
            await strongroom.Strongroom.unseal(strongroom.Storage.sqlite(db), software)
        rebuilt = strongroom.ShamirProtector.from_shares([shares[2], shares[0]])
        assert rebuilt.split_id == shamir.split_id
        sr = await strongroom.Strongroom.unseal(strongroom.Storage.sqlite(db), rebuilt)
        assert (await sr.get_secret("db/pw"))[1].reveal() == b"hunter2"
        sr.close()

        with pytest.raises(strongroom.ShamirTooFewShares):
            strongroom.ShamirProtector.from_shares([shares[1]])
        with pytest.raises(strongroom.ShamirCorruptShare):
            strongroom.ShamirProtector.from_shares([shares[0], altered(shares[1])])
        # shares of a 32-byte secret that is not this store's key
        _, stranger = strongroom.ShamirProtector.generate(2, 2)
        with pytest.raises(strongroom.ProtectorError):
            await strongroom.Strongroom.unseal(
                strongroom.Storage.sqlite(db), strongroom.ShamirProtector.from_shares(stranger)
            )
        # plain shamir_split shares of a short secret are no protector
        with pytest.raises(strongroom.ShamirInvalidParameters):
            strongroom.ShamirProtector.from_shares(strongroom.shamir_split(b"short", 2, 2))
        return shares

    shares = asyncio.run(go())

    # blocking: back from Shamir to a software key
    sr = strongroom.blocking.Strongroom.unseal(
        strongroom.Storage.sqlite(db), strongroom.ShamirProtector.from_shares(shares[:2])
    )
    new_key = tmp_path / "new.key"
    strongroom.SoftwareProtector.generate_key_file(new_key)
    sr.rotate_root_key(strongroom.SoftwareProtector.from_key_file(new_key))
    with pytest.raises(TypeError):
        sr.rotate_root_key("not a protector")
    sr.close()
    sr = strongroom.blocking.Strongroom.unseal(
        strongroom.Storage.sqlite(db), strongroom.SoftwareProtector.from_key_file(new_key)
    )
    assert sr.get_secret("db/pw")[1].reveal() == b"hunter2"
    sr.close()
