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
    private_key: SecretStr | None = Field(None, description="The PEM private key that signs JWT assertions: "
                                          "the key text itself (usual in containers) or the path of its file. "
                                          "Never printed, whichever it is.")
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
    admin_max_body_bytes: int = Field(1_048_576, ge=1_024, le=104_857_600, description="Largest request body "
                                      "the admin API accepts, in bytes; larger ones get 413 before being read.")
    admin_tls_cert: Path | None = Field(None, description="PEM certificate (chain) `cosell serve` offers: with "
                                        "COSELL_ADMIN_TLS_KEY the admin API speaks HTTPS only.")
    admin_tls_key: Path | None = Field(None, description="PEM private key of COSELL_ADMIN_TLS_CERT.")
    admin_allow_plain_http: bool = Field(False, description="Let `cosell serve` listen on a non-loopback address "
                                         "without TLS (only behind a TLS-terminating proxy on a private network).")
    partner_session_secret: SecretStr | None = Field(
        None, min_length=32, description="Key that signs partner session cookies (at least 32 characters). Unset: "
        "a random key per process, so partners sign in again after a restart.")
    partner_base_url: str = Field("http://localhost:8080", description="Where partners reach `cosell serve`; "
                                  "invite links start with it.")
    partner_invite_days: int = Field(7, ge=1, le=90, description="Days an invite link stays valid.")
    partner_session_hours: int = Field(12, ge=1, le=24 * 30, description="Hours a partner session lasts: after "
                                       "the last page loaded, or after sign-in on the JSON API.")
    partner_review_days: int = Field(10, ge=1, le=365, description="Days the vendor has to review a submitted "
                                     "registration; the partner sees the deadline.")
    partner_cookie_secure: bool = Field(True, description="Send the partner session cookie over HTTPS only (browsers "
                                        "treat http://localhost as secure). Turn off only behind plain HTTP in a lab.")
    client_name: str = Field("cosell-connector", pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                             description="Client id sent as `Sforce-Call-Options: client=<id>` on every API call; "
                             "change events of the connector's own writes carry it in changeOrigin, so they do not "
                             "echo back.")
    stream: bool = Field(True, description="`cosell serve` streams Salesforce changes (Change Data Capture over the "
                         "Pub/Sub API) for the objects the org offers it for; the others keep polling.")
    pubsub_url: str = Field("api.pubsub.salesforce.com:7443", description="host:port of the Pub/Sub API (gRPC over "
                            "TLS, verified against COSELL_CA_CERT or the system store; the emulator's pubsub_url).")
    stream_safety_poll: float = Field(3600.0, ge=60, description="Seconds between the safety polls of streamed "
                                      "objects (a slow poll that catches anything a stream could not say).")
    stream_push_interval: float = Field(0.2, gt=0, le=60, description="Seconds between checks of the local change "
                                        "log while streaming (SQL only, no API call when nothing changed); a "
                                        "change is pushed at most this long after it commits.")
    stream_batch_wait: float = Field(0.05, ge=0, le=10, description="Seconds events are gathered before their "
                                     "records are read and applied, so a burst costs one query, not one per event.")
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
    admin_session_hours: float = Field(8.0, gt=0, le=24 * 30, description="How long an admin console sign-in "
                                       "lasts, in hours.")
    alert_webhook_urls: str = Field("", description="Comma-separated webhook URLs alerts are POSTed to "
                                    "(https://; http:// only to localhost). Empty: no alerts.")
    alert_webhook_secret: SecretStr | None = Field(None, description="Key of the HMAC-SHA256 signature each "
                                                   "alert carries (X-Cosell-Signature); required with webhooks.")
    alert_kinds: str = Field("all", description="Comma-separated alert kinds to send, or all: run_failed, "
                             "parked_records, conflicts, channel_conflicts, api_quota.")
    alert_quota_share: float = Field(0.6, gt=0, le=1, description="Share of the org's daily API limit above which "
                                     "an api_quota alert is sent (once per UTC day); keep it below quota_share.")
    alert_interval: float = Field(30.0, gt=0, description="Seconds between two looks for new alerts and "
                                  "deliveries due.")
    alert_max_attempts: int = Field(10, ge=1, le=50, description="Deliveries tried per alert and webhook (waits "
                                    "double from 10 s up to 1 h) before it is given up (kept, marked failed).")

    @field_validator("alert_webhook_urls")
    @classmethod
    def _webhooks(cls, value: str) -> str:
        from urllib.parse import urlsplit

        for url in filter(None, (u.strip() for u in value.split(","))):
            parts = urlsplit(url)
            local = parts.hostname in ("localhost", "127.0.0.1", "::1")
            if parts.scheme != "https" and not (parts.scheme == "http" and local) or not parts.hostname:
                raise ValueError(f"{url!r} is not a webhook URL: give https://host/path (http:// only to localhost)")
        return value

    @property
    def webhooks(self) -> list[str]:
        return [u.strip() for u in self.alert_webhook_urls.split(",") if u.strip()]

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
            if name == "private_key" and value is not None and not is_key_text(value.get_secret_value()):
                out[name] = value.get_secret_value()     # a path says where the key is, not what it is
            elif isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def is_key_text(value: str) -> bool:
    """Whether a COSELL_PRIVATE_KEY value is PEM text rather than a path (a path never holds a PEM armour line)."""
    return "-----BEGIN" in value


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
