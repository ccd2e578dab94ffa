import numpy as np
import pytest

from xfer.cli import main
from xfer.data import vocab
from xfer.errors import XferError
from xfer.units import format_budget, parse_budgets, parse_bytes, to_mib


def test_parse_bytes_names_and_integers():
    assert parse_bytes("6M") == 6_000_000
    assert parse_bytes("19M") == 19_000_000
    assert parse_bytes("6B") == 6_000_000_000
    assert parse_bytes("10K") == 10_000
    assert parse_bytes("6e6") == 6_000_000
    assert parse_bytes(6815744) == 6815744
    assert format_budget(6_000_000) == "6M"
    assert to_mib(2**20 * 3) == 3.0


def test_budget_names_are_exact_and_keep_existing_keys():
    """Two budgets never share a name (a trial key, folder and ledger row); the names of the
    budgets studies already use stay as they were."""
    kept = {5_000: "5K", 20_000: "20K", 60_000: "60K", 6_000_000: "6M", 19_000_000: "19M",
            2_500_000: "2.5M", 12_340_000: "12.34M", 6_000_000_000: "6B", 1010: "1.01K", 999: "999"}
    assert {n: format_budget(n) for n in kept} == kept
    assert format_budget(1_234_567_000) != format_budget(1_234_568_000)
    rng = np.random.default_rng(0)
    for n in [1_234_567_000, 1_234_568_000, 1_000_001_000, 123_456_780,
              *rng.integers(1, 10**13, 2000).tolist()]:
        assert parse_bytes(format_budget(n)) == n, (n, format_budget(n))


@pytest.mark.parametrize("bad", ["0", "-5", "six", "1.5", ""])
def test_parse_bytes_rejects(bad):
    with pytest.raises(XferError):
        parse_bytes(bad)


def test_budgets_must_increase():
    assert parse_budgets("6M,60M") == [6_000_000, 60_000_000]
    with pytest.raises(XferError, match="increase"):
        parse_budgets("60M,6M")


def test_vocab_roundtrip():
    ids = vocab.encode("héllo")
    assert len(ids) == len("héllo".encode())
    assert vocab.decode(ids) == "héllo"
    raw = np.frombuffer(b"ab\xff", dtype=np.uint8)
    assert vocab.bytes_to_ids(raw).tolist() == [ord("a") + 3, ord("b") + 3, vocab.EOS_ID]
    assert vocab.VOCAB_SIZE == 259


def test_cli_unknown_command_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice" in err
