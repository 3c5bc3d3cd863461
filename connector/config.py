"""Settings: from COSELL_* environment variables, a `.env` file, or the config file
`cosell init` writes, in that order of precedence. Secrets are held as secret
types and never printed; `describe()` shows settings with secrets masked."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict,
                               YamlConfigSettingsSource)

from connector.cosell.channel import DirectOwnership

AuthFlow = Literal["jwt", "refresh_token", "password", "session"]
AUTH_FLOWS: tuple[str, ...] = get_args(AuthFlow)
DEFAULT_CONFIG_FILE = Path("cosell.config.yaml")


class Settings(BaseSettings):
    """Every setting of the connector; each maps to COSELL_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="COSELL_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", validate_default=True)

    config: Path = Field(DEFAULT_CONFIG_FILE, description="The YAML config file `cosell init` writes.")
    database_url: str = Field("sqlite:///cosell.db", description="SQLAlchemy URL of the local database "
                              "(default: a SQLite file in the working directory).")
    mapping: Path | None = Field(None, description="Mapping file; default: the shipped connector/mappings/cosell.yaml.")
    login_url: str = Field("https://login.salesforce.com", description="OAuth login URL: login.salesforce.com, "
                           "test.salesforce.com, a My Domain, or the emulator's login_url.")
    auth: AuthFlow = Field("jwt", description="Auth flow: jwt (recommended), refresh_token, password, session.")
    username: str | None = Field(None, description="Integration user's username (jwt, password).")
    consumer_key: str | None = Field(None, description="Connected app consumer key.")
    consumer_secret: SecretStr | None = Field(None, description="Connected app consumer secret (password, "
                                              "optionally refresh_token).")
    private_key: Path | None = Field(None, description="Path of the PEM private key that signs JWT assertions.")
    refresh_token: SecretStr | None = Field(None, description="OAuth refresh token (refresh_token flow).")
    password: SecretStr | None = Field(None, description="Integration user's password (password flow).")
    security_token: SecretStr | None = Field(None, description="Security token appended to the password.")
    instance_url: str | None = Field(None, description="Instance URL of a given session (session flow).")
    access_token: SecretStr | None = Field(None, description="Access token of a given session (session flow).")
    ca_cert: Path | None = Field(None, description="A certificate to trust for TLS (e.g. the emulator's); the "
                                 "system store is used otherwise. Verification is never turned off.")
    api_version: str = Field("59.0", description="Salesforce REST API version.")
    quota_share: float = Field(0.8, gt=0, le=1, description="Share of the org's daily API limit the connector "
                               "may use before it stops a run cleanly.")
    request_timeout: float = Field(120.0, gt=0, description="Read timeout of one API call, in seconds.")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per API call on transient failures.")
    retry_initial_wait: float = Field(0.5, ge=0, description="First backoff wait in seconds (doubles, jittered).")
    retry_max_wait: float = Field(30.0, ge=0, description="Longest backoff wait in seconds.")
    reconcile_missing_payout_days: int = Field(
        45, ge=0, le=3650, description="Days after a closed-won AWS/Azure Marketplace deal's close date before "
        "a deal with no payout is marked Missing Payout. 45 covers 30-day invoice terms plus the marketplaces' "
        "disbursement cycle (money is paid out only after the buyer's invoice is collected).")
    reconcile_tolerance: Decimal = Field(
        Decimal("1.00"), ge=0, description="Largest difference, in the deal's currency, between a deal's amount "
        "and the seller revenue received that still counts as Matched (rounding of per-line amounts).")
    reconcile_fx_tolerance_percent: Decimal = Field(
        Decimal("2.0"), ge=0, le=100, description="Added to the tolerance, as a percentage of the deal's amount, "
        "when a payout was in another currency than the deal: the marketplace converts at its daily rate, "
        "the org's dated rates hold for a whole period.")
    direct_account_types: str = Field(
        "Customer - Direct", description="Comma-separated Account.Type values that mean direct sales owns the "
        "account: a partner's registration of such an end customer is a channel conflict. Empty: none by type.")
    direct_account_owners: str = Field(
        "", description="Comma-separated User Ids of the direct sales team: an end customer they own is direct-owned "
        "whatever its type. Empty: none by owner.")
    channel_conflict_flag: bool = Field(
        True, description="Flag an opportunity with an open channel conflict in Salesforce (Channel_Conflict__c and "
        "Channel_Conflict_Reason__c, when the org has them and the mapping syncs them).")
    registration_check_interval: int = Field(
        3600, ge=60, le=86400, description="Seconds between `cosell serve`'s registration checks: expiring approved "
        "registrations past their expiry date (org clock) and looking for channel conflicts.")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or one JSON object each.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Least severe level logged.")

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL, not {value!r}")
        return value.rstrip("/") if value else value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        config_path = _config_path(init_settings, env_settings, dotenv_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if config_path is not None and config_path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_path))
        return tuple(sources)

    def direct_ownership(self) -> DirectOwnership:
        """The rule that says which end customers direct sales owns, from the two settings above."""
        def names(value: str) -> frozenset[str]:
            return frozenset(v.strip() for v in value.split(",") if v.strip())
        return DirectOwnership(types=names(self.direct_account_types), owners=names(self.direct_account_owners))

    def describe(self) -> dict[str, Any]:
        """Settings as an admin may see them: secrets masked, never printed."""
        out = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def _config_path(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        try:
            values = source()
        except Exception:  # a broken .env is reported by pydantic itself later
            continue
        value = values.get("config")
        if value:
            return Path(value)
    return DEFAULT_CONFIG_FILE
