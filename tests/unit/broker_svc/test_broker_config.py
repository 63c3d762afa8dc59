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
