def test_resend_floor_override_is_off_by_default_and_read_when_given() -> None:
    import base64

    from broker_svc.config import Settings
    from meshkit.testing import trust_env

    key = base64.b64encode(bytes(32)).decode()
    assert (
        Settings.from_env({**trust_env("broker"), "ENCRYPTION_KEY": key}).resend_safe_after_seconds
        is None
    )
    assert (
        Settings.from_env(
            {**trust_env("broker"), "ENCRYPTION_KEY": key, "RESEND_SAFE_AFTER_SECONDS": "3"}
        ).resend_safe_after_seconds
        == 3
    )


def test_the_paper_venue_is_off_by_default_and_its_balances_and_prices_are_read() -> None:
    import base64
    from decimal import Decimal

    import pytest

    from broker_svc.config import Settings
    from meshkit.settings import ConfigError, collect
    from meshkit.testing import trust_env

    env = {**trust_env("broker"), "ENCRYPTION_KEY": base64.b64encode(bytes(32)).decode()}
    default = Settings.from_env(env)
    assert not default.paper_venue
    assert default.paper_balances == {"USDT": Decimal("100000"), "USD": Decimal("100000")}
    assert default.paper_prices["BTC/USDT"] == Decimal("50000")
    given = Settings.from_env(
        {
            **env,
            "BROKER_PAPER_VENUE": "true",
            "BROKER_PAPER_BALANCES": "usdt=250.5",
            "BROKER_PAPER_PRICES": "BTC/USDT=61000, SOL/USDT=150",
        }
    )
    assert given.paper_venue
    assert given.paper_balances == {"USDT": Decimal("250.5")}
    assert given.paper_prices == {"BTC/USDT": Decimal("61000"), "SOL/USDT": Decimal("150")}
    for variable, value in (
        ("BROKER_PAPER_PRICES", "BTC=5"),
        ("BROKER_PAPER_PRICES", "BTC/USDT=-1"),
        ("BROKER_PAPER_BALANCES", "USDT=lots"),
        ("BROKER_PAPER_BALANCES", "BTC/USDT=1"),
    ):
        [problem] = collect(Settings.from_env, {**env, variable: value})
        assert problem.variables == (variable,)
        with pytest.raises(ConfigError):
            Settings.from_env({**env, variable: value})
